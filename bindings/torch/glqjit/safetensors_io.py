"""Reading and writing safetensors files without torch or the safetensors package.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range in the data that follows, then the data. The reader checks the header
as strictly as our C++ reader (tuner/safetensors_header.cpp) and the reference loader do, since a
checkpoint folder is outside input: a file glqjit accepts is one every loader accepts.
"""

import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class CheckpointError(ValueError):
    """A checkpoint file or folder glqjit cannot use; the message names the file and what to do.

    Defined here so that glqjit.checkpoint can re-export it and callers catch one error for a
    damaged safetensors file and for a foreign or incomplete checkpoint."""


class SafetensorsError(CheckpointError):
    """A safetensors file that cannot be read or whose header lies about its contents."""


DTYPE_ITEMSIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "F64": 8, "I64": 8, "U64": 8,
}

# The reference loader refuses longer headers; refusing them before reading keeps a hostile length
# from costing memory.
MAX_HEADER_BYTES = 100_000_000

COPY_AGAIN = "the file is damaged or was cut short: copy or export it again"


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors dtype string: 'I64', 'F16', 'BF16', 'F32', ...
    shape: tuple[int, ...]
    file: str
    begin: int  # absolute byte offset of the data in file
    end: int


def _is_size(value):
    # JSON true/false load as bool, which Python counts as int; a size is never a bool.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shown(value):
    """A header value as the file spells it, cut short so a hostile header cannot flood a message."""
    text = json.dumps(value) if len(repr(value)) < 200 else f"a JSON {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def _unique_keys(pairs):
    # A key given twice would let the last entry silently hide the first; the file is damaged.
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise SafetensorsError(f"has the key '{key}' twice in one object of its header")
        seen[key] = value
    return seen


def _parse_entry(fail, name, entry, data_bytes):
    """One tensor's header entry as (dtype, shape, begin, end), offsets relative to the data."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        fail(f"tensor '{name}' is described by {_shown(entry)}, not an object with dtype, shape and data_offsets")
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_ITEMSIZE:
        fail(f"tensor '{name}' has dtype {_shown(dtype)}, which is no safetensors dtype glqjit knows "
             f"({', '.join(DTYPE_ITEMSIZE)})")
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_size(extent) for extent in shape):
        fail(f"tensor '{name}' has shape {_shown(shape)}, not a list of sizes >= 0")
    offsets = entry["data_offsets"]
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_size(o) for o in offsets)
            or offsets[0] > offsets[1]):
        fail(f"tensor '{name}' has data_offsets {_shown(offsets)}, not [begin, end] with 0 <= begin <= end")
    begin, end = offsets
    if end > data_bytes:
        fail(f"tensor '{name}' has data_offsets [{begin}, {end}], beyond the {data_bytes} bytes of data after "
             "the header")
    expected_bytes = math.prod(shape) * DTYPE_ITEMSIZE[dtype]
    if end - begin != expected_bytes:
        fail(f"tensor '{name}' is {dtype} {shape} ({expected_bytes} bytes), but its data_offsets [{begin}, {end}] "
             f"hold {end - begin} bytes")
    return dtype, tuple(shape), begin, end


def _check_tiling(fail, spans, data_bytes):
    # The tensors must tile the data exactly, as the reference loader demands.
    covered, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin < covered:
            fail(f"tensor '{name}' (bytes [{begin}, {end})) overlaps tensor '{previous[2]}' "
                 f"(bytes [{previous[0]}, {previous[1]}))")
        if begin > covered:
            fail(f"bytes [{covered}, {begin}) of the data belong to no tensor (the next is '{name}')")
        covered, previous = end, (begin, end, name)
    if covered != data_bytes:
        fail(f"the tensors end at byte {covered} of the data but the file holds {data_bytes} bytes of data")


def read_header(path) -> dict[str, TensorInfo]:
    """The tensors of a safetensors file by name, read from its header (never its data).

    Raises SafetensorsError naming the file for a file that cannot be read, a length or header that
    lies about the file, an unknown dtype, bad shapes or offsets, or tensors that do not tile the data.
    """
    path = os.fspath(path)

    def fail(problem, remedy=COPY_AGAIN):
        # from None: the message says it all, so a parse error underneath is not shown as a second traceback.
        raise SafetensorsError(f"safetensors file {path}: {problem}; {remedy}") from None

    try:
        with open(path, "rb") as file:
            file_bytes = os.fstat(file.fileno()).st_size
            length_bytes = file.read(8)
            if len(length_bytes) < 8:
                fail(f"is {file_bytes} bytes, too short for the 8-byte header length a safetensors file starts with")
            (header_bytes,) = struct.unpack("<Q", length_bytes)
            if header_bytes > MAX_HEADER_BYTES:
                fail(f"says its header is {header_bytes} bytes, over the 100 MB limit of the safetensors format")
            if header_bytes > file_bytes - 8:
                fail(f"says its header is {header_bytes} bytes, but only {file_bytes - 8} bytes follow the header "
                     "length")
            header_text = file.read(header_bytes)
    except OSError as error:
        fail(f"cannot be opened or read ({error.strerror or error})", "check that it exists and can be read")
    if len(header_text) != header_bytes:  # the file shrank since its size was taken
        fail("ended while its header was read")
    try:
        header = json.loads(header_text.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as error:
        fail(f"has a header that is not UTF-8 ({error.reason} at byte {error.start})")
    except SafetensorsError as error:
        fail(str(error))
    except ValueError as error:  # json.JSONDecodeError
        fail(f"has a header that is not JSON ({error})")
    except RecursionError:  # Python's parser recurses per nesting level
        fail("has a header whose JSON nests too deeply to be a tensor list")
    if not isinstance(header, dict):
        fail(f"has a header holding a JSON {type(header).__name__}, not an object of tensors")

    data_start = 8 + header_bytes
    data_bytes = file_bytes - data_start
    tensors, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict):
                fail(f"has '__metadata__' {_shown(entry)}, not an object of strings")
            continue
        dtype, shape, begin, end = _parse_entry(fail, name, entry, data_bytes)
        spans.append((begin, end, name))
        tensors[name] = TensorInfo(name, dtype, shape, path, data_start + begin, data_start + end)
    _check_tiling(fail, spans, data_bytes)
    return tensors


def read_bytes(info: TensorInfo) -> bytes:
    """The tensor's raw little-endian data, as its header placed it."""
    try:
        with open(info.file, "rb") as file:
            file.seek(info.begin)
            data = file.read(info.end - info.begin)
    except OSError as error:
        raise SafetensorsError(f"safetensors file {info.file}: cannot be read for tensor '{info.name}' "
                               f"({error.strerror or error}); check that it exists and can be read") from error
    if len(data) != info.end - info.begin:
        raise SafetensorsError(f"safetensors file {info.file}: ended inside tensor '{info.name}' (it was cut short "
                               f"after its header was read); {COPY_AGAIN}")
    return data


def _header_bytes(tensors, metadata):
    header = {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("safetensors metadata maps strings to strings")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"tensor name {name!r} cannot be written: names are strings other than __metadata__")
        if dtype not in DTYPE_ITEMSIZE:
            raise ValueError(f"tensor '{name}' has dtype {dtype!r}; safetensors knows {', '.join(DTYPE_ITEMSIZE)}")
        shape = list(shape)
        if not all(_is_size(extent) for extent in shape):
            raise ValueError(f"tensor '{name}' has shape {shape}, not a list of sizes >= 0")
        expected_bytes = math.prod(shape) * DTYPE_ITEMSIZE[dtype]
        given_bytes = memoryview(data).nbytes
        if given_bytes != expected_bytes:
            raise ValueError(f"tensor '{name}' is {dtype} {shape}, {expected_bytes} bytes, but {given_bytes} bytes "
                             "were given")
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + given_bytes]}
        offset += given_bytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # Spaces (valid JSON whitespace) pad the header so the data starts 8-byte aligned.
    return text + b" " * (-len(text) % 8)


def write_safetensors(path, tensors: Mapping[str, tuple[str, Sequence[int], bytes]],
                      metadata: dict[str, str] | None = None) -> None:
    """Writes `tensors` (name -> (dtype, shape, little-endian data)) as a safetensors file.

    The data goes in name order, as the reference writer orders it. The file is written beside
    `path` under a temporary name, flushed to disk, then renamed over `path`, so a crash leaves
    the old file or the new one, never half a file. Raises ValueError for a bad dtype, shape or size.
    """
    path = os.fspath(path)
    header = _header_bytes(tensors, metadata)
    folder, base = os.path.split(path)
    temporary = os.path.join(folder, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    # O_EXCL: never write into a file someone else made; 0o666 lets the umask decide, as open() would.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "wb") as file:
            file.write(struct.pack("<Q", len(header)))
            file.write(header)
            for name in sorted(tensors):
                file.write(tensors[name][2])
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
