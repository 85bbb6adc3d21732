"""Builds the Python package glqjit and its PyTorch extension glqjit._C against an installed libglqjit.

    cmake --install build --prefix PREFIX        # the library, its headers, glqjit.pc
    GLQJIT_PREFIX=PREFIX pip install --no-build-isolation ./bindings/torch

Needs PyTorch with CUDA and the CUDA toolkit (nvcc) of that PyTorch's major version. The
extension records PREFIX's library folder in its RUNPATH, so `import glqjit` finds libglqjit.so
there without LD_LIBRARY_PATH.
"""

import os
import pathlib

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CUDAExtension

def installed_glqjit():
    """(include folder, library folder, version) of the libglqjit under $GLQJIT_PREFIX."""
    prefix = os.environ.get("GLQJIT_PREFIX")
    if not prefix:
        raise SystemExit(
            "glqjit: set GLQJIT_PREFIX to the prefix libglqjit was installed to "
            "(cmake --install build --prefix PREFIX), e.g. GLQJIT_PREFIX=/opt/glqjit pip install ./bindings/torch"
        )
    prefix = pathlib.Path(prefix).resolve()
    for libdir in (prefix / "lib", prefix / "lib64"):
        pc = libdir / "pkgconfig" / "glqjit.pc"
        if pc.is_file():
            version = next(
                line.split(":", 1)[1].strip() for line in pc.read_text().splitlines() if line.startswith("Version:")
            )
            return prefix / "include", libdir, version
    raise SystemExit(
        f"glqjit: {prefix} holds no lib/pkgconfig/glqjit.pc; install libglqjit there first "
        f"(cmake --install build --prefix {prefix})"
    )


include_dir, library_dir, version = installed_glqjit()

setup(
    name="glqjit",
    version=version,
    description="GLQ (E8P-RVQ) quantized linear layers for PyTorch, run by libglqjit",
    license="Apache-2.0",
    packages=["glqjit"],
    ext_modules=[
        CUDAExtension(
            "glqjit._C",
            ["csrc/glqjit_torch.cpp"],
            include_dirs=[str(include_dir)],
            library_dirs=[str(library_dir)],
            libraries=["glqjit"],
            extra_compile_args={"cxx": ["-O2", "-std=c++17"]},
            extra_link_args=[f"-Wl,-rpath,{library_dir}", "-Wl,--version-script=csrc/exports.map"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
    python_requires=">=3.10",
)
