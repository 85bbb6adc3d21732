"""The Python package says the same version as the library it binds (CMakeLists.txt's project())."""

import os
import re
import unittest

import glqjit

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


class VersionTest(unittest.TestCase):
    def test_package_version_is_the_projects(self):
        with open(os.path.join(ROOT, "CMakeLists.txt")) as file:
            project = re.search(r"project\(glqjit VERSION (\d+\.\d+\.\d+)", file.read())
        self.assertIsNotNone(project, "CMakeLists.txt has no project(glqjit VERSION X.Y.Z)")
        self.assertEqual(glqjit.__version__, project.group(1))

    def test_pure_python_parts_import_without_torch_and_the_rest_is_named(self):
        self.assertIn("load_glq_checkpoint", glqjit.__all__)
        with self.assertRaises(AttributeError):
            glqjit.no_such_name


if __name__ == "__main__":
    unittest.main()
