"""glqjit.safetensors_io: the writer's layout, write/read round trips, an atomic replace, and a
CheckpointError naming the file for every way a header can lie."""

import json
import os
import random
import struct
import tempfile
import unittest
from unittest import mock

from glqjit.checkpoint import CheckpointError
from glqjit.safetensors_io import DTYPE_ITEMSIZE, SafetensorsError, read_bytes, read_header, write_safetensors


class TempFolderCase(unittest.TestCase):
    def setUp(self):
        temporary = tempfile.TemporaryDirectory()
        self.addCleanup(temporary.cleanup)
        self.folder = temporary.name

    def path(self, name):
        return os.path.join(self.folder, name)


class WriteReadTest(TempFolderCase):
    def test_layout_is_the_safetensors_layout(self):
        path = self.path("two.safetensors")
        write_safetensors(path, {"b": ("F32", [1], b"\x00\x00\x80\x3f"), "a": ("I16", (2,), b"\x01\x00\x02\x00")},
                          metadata={"format": "pt"})
        header = (b'{"__metadata__":{"format":"pt"},"a":{"dtype":"I16","shape":[2],"data_offsets":[0,4]},'
                  b'"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')
        header += b" " * (-len(header) % 8)
        with open(path, "rb") as file:
            self.assertEqual(file.read(), struct.pack("<Q", len(header)) + header + b"\x01\x00\x02\x00\x00\x00\x80\x3f")

    def test_header_is_padded_with_spaces_to_a_multiple_of_8(self):
        for length in range(1, 17):
            path = self.path(f"pad{length}.safetensors")
            write_safetensors(path, {"t" * length: ("U8", [1], b"\x07")})
            with open(path, "rb") as file:
                (header_bytes,) = struct.unpack("<Q", file.read(8))
                header = file.read(header_bytes)
            self.assertEqual(header_bytes % 8, 0)
            self.assertEqual(json.loads(header), {"t" * length: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})
            stripped = header.rstrip(b" ")
            self.assertTrue(stripped.endswith(b"}"), header)
            self.assertLess(len(header) - len(stripped), 8, "no more padding than alignment needs")

    def test_random_tensors_round_trip(self):
        rng = random.Random(11)
        alphabet = "abcxyz._0123456789-é"
        for trial in range(40):
            tensors = {}
            for _ in range(rng.randrange(0, 7)):
                name = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12)))
                dtype = rng.choice(sorted(DTYPE_ITEMSIZE))
                shape = [rng.randrange(0, 5) for _ in range(rng.randrange(0, 4))]
                count = 1
                for extent in shape:
                    count *= extent
                tensors[name] = (dtype, shape, rng.randbytes(count * DTYPE_ITEMSIZE[dtype]))
            path = self.path(f"random{trial}.safetensors")
            write_safetensors(path, tensors, metadata={"trial": str(trial)} if trial % 2 else None)
            infos = read_header(path)
            self.assertEqual(sorted(infos), sorted(tensors))
            for name, (dtype, shape, data) in tensors.items():
                info = infos[name]
                self.assertEqual((info.name, info.dtype, info.shape, info.file), (name, dtype, tuple(shape), path))
                self.assertEqual(info.end - info.begin, len(data))
                self.assertEqual(read_bytes(info), data)

    def test_write_replaces_the_file_whole_or_not_at_all(self):
        path = self.path("model.safetensors")
        write_safetensors(path, {"old": ("U8", [2], b"\x01\x02")})
        with open(path, "rb") as file:
            before = file.read()
        with mock.patch("os.replace", side_effect=OSError("disk gone")), self.assertRaises(OSError):
            write_safetensors(path, {"new": ("U8", [3], b"\x01\x02\x03")})
        with open(path, "rb") as file:
            self.assertEqual(file.read(), before)
        self.assertEqual(os.listdir(self.folder), ["model.safetensors"], "the temporary file is removed")
        write_safetensors(path, {"new": ("U8", [3], b"\x01\x02\x03")})
        self.assertEqual(list(read_header(path)), ["new"])
        self.assertEqual(os.listdir(self.folder), ["model.safetensors"])

    def test_writer_refuses_tensors_it_cannot_describe(self):
        bad = {
            "unknown dtype": {"t": ("F128", [1], b"\x00" * 16)},
            "negative extent": {"t": ("U8", [-1], b"")},
            "size mismatch": {"t": ("F32", [2], b"\x00" * 4)},
            "reserved name": {"__metadata__": ("U8", [1], b"\x00")},
        }
        for case, tensors in bad.items():
            with self.subTest(case), self.assertRaises(ValueError):
                write_safetensors(self.path("bad.safetensors"), tensors)
        with self.assertRaises(ValueError):
            write_safetensors(self.path("bad.safetensors"), {}, metadata={"n": 1})
        self.assertEqual(os.listdir(self.folder), [], "nothing is written for a refused tensor")

    def test_read_bytes_of_a_file_cut_short_after_its_header_was_read(self):
        path = self.path("cut.safetensors")
        write_safetensors(path, {"t": ("F32", [4], bytes(16))})
        info = read_header(path)["t"]
        os.truncate(path, info.end - 3)
        with self.assertRaises(CheckpointError) as caught:
            read_bytes(info)
        self.assertIn(path, str(caught.exception))
        self.assertIn("cut short", str(caught.exception))


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


class BadHeaderTest(TempFolderCase):
    def write_raw(self, header, data=b"", length=None):
        """A file whose header is `header` (bytes, or an object dumped as JSON), with its own length
        unless `length` says otherwise."""
        text = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
        path = self.path("bad.safetensors")
        with open(path, "wb") as file:
            file.write(struct.pack("<Q", len(text) if length is None else length) + text + data)
        return path

    def assertRefused(self, path, *fragments):
        with self.assertRaises(CheckpointError) as caught:
            read_header(path)
        self.assertIsInstance(caught.exception, SafetensorsError)
        message = str(caught.exception)
        self.assertIn(f"safetensors file {path}", message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def test_a_well_formed_file_is_accepted(self):
        path = self.write_raw({"__metadata__": {"a": "b"}, "t": entry("F16", [2, 1], 0, 4)}, b"\x00" * 4)
        info = read_header(path)["t"]
        self.assertEqual((info.dtype, info.shape, info.end - info.begin), ("F16", (2, 1), 4))

    def test_files_too_short_for_the_length(self):
        for size in (0, 7):
            path = self.path("short.safetensors")
            with open(path, "wb") as file:
                file.write(b"\x00" * size)
            self.assertRefused(path, f"is {size} bytes, too short", "copy or export it again")

    def test_header_length_beyond_the_file(self):
        self.assertRefused(self.write_raw(b"{}", length=1000), "says its header is 1000 bytes", "only 2 bytes follow")
        self.assertRefused(self.write_raw(b"{}", length=3), "says its header is 3 bytes", "only 2 bytes follow")

    def test_header_length_beyond_the_format_limit(self):
        self.assertRefused(self.write_raw(b"{}", length=1 << 40), "over the 100 MB limit")

    def test_header_not_utf8(self):
        self.assertRefused(self.write_raw(b'{"\xff": 1}'), "not UTF-8")

    def test_header_not_json(self):
        self.assertRefused(self.write_raw(b'{"t": {"dtype": '), "not JSON")

    def test_header_nested_beyond_the_parser(self):
        self.assertRefused(self.write_raw(b'{"t": ' + b"[" * 100000 + b"]" * 100000 + b"}"), "nests too deeply")

    def test_header_not_an_object(self):
        self.assertRefused(self.write_raw([1, 2]), "JSON list, not an object of tensors")

    def test_duplicate_tensor_names(self):
        text = json.dumps(entry("U8", [1], 0, 1))
        self.assertRefused(self.write_raw(f'{{"t": {text}, "t": {text}}}'.encode(), b"\x00"), "'t' twice")

    def test_entries_that_describe_no_tensor(self):
        for case, description in {"not an object": 5, "no data_offsets": {"dtype": "U8", "shape": [1]}}.items():
            with self.subTest(case):
                self.assertRefused(self.write_raw({"t": description}, b"\x00"), "tensor 't' is described by")

    def test_unknown_dtype(self):
        for dtype in ("F128", "f16", 5):
            with self.subTest(dtype=dtype):
                self.assertRefused(self.write_raw({"t": entry(dtype, [1], 0, 1)}, b"\x00"),
                                   f"tensor 't' has dtype {json.dumps(dtype)}, which is no safetensors dtype")

    def test_bad_shapes(self):
        for shape in ([-1], [1.5], [True], "3", None):
            with self.subTest(shape=shape):
                self.assertRefused(self.write_raw({"t": entry("U8", shape, 0, 1)}, b"\x00"),
                                   "tensor 't' has shape", "not a list of sizes >= 0")

    def test_bad_offsets(self):
        for offsets in ([0], [1, 0], [-1, 0], [0, 1.0], "0,1"):
            with self.subTest(offsets=offsets):
                description = {"dtype": "U8", "shape": [1], "data_offsets": offsets}
                self.assertRefused(self.write_raw({"t": description}, b"\x00"), "tensor 't' has data_offsets",
                                   "not [begin, end]")

    def test_offsets_beyond_the_data(self):
        self.assertRefused(self.write_raw({"t": entry("U8", [8], 0, 8)}, b"\x00" * 4),
                           "data_offsets [0, 8], beyond the 4 bytes of data")

    def test_size_that_disagrees_with_the_offsets(self):
        self.assertRefused(self.write_raw({"t": entry("F32", [2], 0, 4)}, b"\x00" * 4),
                           "tensor 't' is F32 [2] (8 bytes), but its data_offsets [0, 4] hold 4 bytes")

    def test_tensors_that_overlap(self):
        path = self.write_raw({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 2, 6)}, b"\x00" * 6)
        self.assertRefused(path, "tensor 'b' (bytes [2, 6)) overlaps tensor 'a'")

    def test_data_that_belongs_to_no_tensor(self):
        path = self.write_raw({"a": entry("U8", [4], 0, 4), "b": entry("U8", [4], 6, 10)}, b"\x00" * 10)
        self.assertRefused(path, "bytes [4, 6) of the data belong to no tensor")
        self.assertRefused(self.write_raw({"a": entry("U8", [4], 0, 4)}, b"\x00" * 6),
                           "the tensors end at byte 4 of the data but the file holds 6 bytes of data")

    def test_metadata_not_an_object(self):
        self.assertRefused(self.write_raw({"__metadata__": "pt"}), "'__metadata__' \"pt\", not an object")

    def test_missing_file(self):
        self.assertRefused(self.path("absent.safetensors"), "cannot be opened", "check that it exists")


if __name__ == "__main__":
    unittest.main()
