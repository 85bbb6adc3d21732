"""The quantized linears of a GLQ checkpoint folder (FORMAT.md sections 4-7), found and checked
from config.json and the safetensors headers, before any tensor data is read.

The Python twin of tuner/checkpoint.cpp: the same rules and the same kind of messages, each naming
the tensor, the file, what it is against what it must be, and what to do. Standard library only.
"""

import json
import os
import re
from dataclasses import dataclass

from .format import (MAX_BPW, MAX_STAGES, MIN_BPW, padded_in, padded_out, scale_tensor_leaf, stage_kinds,
                     stage_tensor_leaf)
from .safetensors_io import COPY_AGAIN, CheckpointError, TensorInfo, read_header
from .safetensors_io import _shown as shown

__all__ = [
    "CheckpointError", "GLQConfig", "LinearTensors", "find_linear", "quantized_prefixes", "read_glq_config",
    "read_tensor_table",
]

RE_EXPORT = "re-export this checkpoint with the GLQ quantizer"
OWN_CONFIG = "use the config.json the checkpoint was exported with"
# A config.json is a few kilobytes and an index lists a few thousand names; files this large are something else.
MAX_CONFIG_BYTES = 16 << 20
MAX_INDEX_BYTES = 100_000_000


@dataclass
class GLQConfig:
    path: str  # the config.json
    codebook: str
    block_diagonal: bool  # False: a legacy single-block checkpoint (FORMAT.md section 5)
    layer_bpw: dict[str, int] | None  # full layer name -> bpw; layers not named are unquantized


@dataclass
class LinearTensors:
    prefix: str
    bpw: int
    in_features: int
    out_features: int
    m_pad: int
    n_pad: int
    stage_kinds: list[str]
    stages: list[TensorInfo]
    su: TensorInfo
    sv: TensorInfo
    wscale: TensorInfo
    inv_resid_scales: list[TensorInfo]  # c_1.. for stages 1..
    bias: TensorInfo | None


def _require_folder(folder):
    if not os.path.isdir(folder):
        problem = ("is a file, not a folder; pass the folder of a GLQ checkpoint" if os.path.exists(folder)
                   else "there is no such folder; pass the folder of a GLQ checkpoint")
        raise CheckpointError(f"checkpoint {folder}: {problem}")


def _read_json(path, what, max_bytes, remedy):
    def fail(problem):
        raise CheckpointError(f"{what} {path}: {problem}") from None  # the message says what went wrong

    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > max_bytes:
                fail(f"is {size} bytes, far more than such a file holds; {remedy}")
            text = file.read()
    except OSError as error:
        fail(f"cannot be opened ({error.strerror or error}); check that it can be read")
    try:
        return json.loads(text)
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError, an integer too long
        fail(f"is not JSON ({error}); {remedy}")
    except RecursionError:  # Python's parser recurses per nesting level
        fail(f"nests its JSON too deeply to be a {what}; {remedy}")


def _present(mapping, key):
    # A null value counts as absent, as Hugging Face writes `"key": null` for "the default".
    value = mapping.get(key)
    return value is not None, value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def read_glq_config(folder) -> GLQConfig:
    """The GLQ quantization_config of folder/config.json (FORMAT.md section 7).

    Raises CheckpointError naming the file and the key for a missing folder or config.json, a
    config that is no GLQ one (no quant_method, another quant_method, a codebook other than e8p)
    or a mistyped block_diagonal or layer_bpw.
    """
    folder = os.fspath(folder)
    _require_folder(folder)
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {folder}: has no config.json; a GLQ checkpoint keeps the model's "
                              "config.json, with its quantization_config, beside the safetensors files")
    own_config = "pass the model's own config.json (the one beside its weights)"
    root = _read_json(path, "model config", MAX_CONFIG_BYTES, own_config)

    def fail(problem):
        raise CheckpointError(f"model config {path}: {problem}")

    if not isinstance(root, dict):
        fail(f"holds a JSON {type(root).__name__}, not an object of keys; {own_config}")
    has_quantization, quantization = _present(root, "quantization_config")
    if has_quantization and not isinstance(quantization, dict):
        fail(f"'quantization_config' is {shown(quantization)}, not a JSON object; {own_config}")
    quantization = quantization or {}

    def text(key):
        present, value = _present(quantization, key)
        if present and not isinstance(value, str):
            fail(f"'quantization_config.{key}' is {shown(value)}, not a string; write it as a JSON string")
        return value if present else ""

    quant_method = text("quant_method")
    if not quant_method:
        fail("has no 'quantization_config.quant_method', so this folder is no GLQ checkpoint; quantize the model "
             "with GLQ first")
    if quant_method != "glq":
        fail(f"has 'quantization_config.quant_method' \"{quant_method}\", but glqjit reads only \"glq\" "
             "checkpoints; quantize the model with GLQ")
    codebook = text("codebook")
    if codebook != "e8p":
        fail(f"has 'quantization_config.codebook' \"{codebook}\", but glqjit decodes only \"e8p\" (FORMAT.md "
             f"sections 2-3); {RE_EXPORT}")

    has_block_diagonal, block_diagonal = _present(quantization, "block_diagonal")
    if has_block_diagonal and not isinstance(block_diagonal, bool):
        fail(f"'quantization_config.block_diagonal' is {shown(block_diagonal)}, not true or false; "
             "write it as a JSON boolean")

    has_layer_bpw, layer_bpw = _present(quantization, "layer_bpw")
    if has_layer_bpw:
        if not isinstance(layer_bpw, dict):
            fail(f"'quantization_config.layer_bpw' is {shown(layer_bpw)}, not a JSON object from layer "
                 f"names to bpw; {own_config}")
        for layer, bpw in layer_bpw.items():
            if not _is_int(bpw) or not MIN_BPW <= bpw <= MAX_BPW:
                fail(f"'quantization_config.layer_bpw' gives layer '{layer}' the bpw {shown(bpw)}, but a "
                     f"GLQ bpw is an integer {MIN_BPW}..{MAX_BPW} (FORMAT.md section 4); leave unquantized layers "
                     "out of layer_bpw")
    return GLQConfig(path=path, codebook=codebook, block_diagonal=block_diagonal if has_block_diagonal else True,
                     layer_bpw=dict(layer_bpw) if has_layer_bpw else None)


def _merge(table, tensors):
    for name, info in tensors.items():
        if name in table:
            raise CheckpointError(f"safetensors file {info.file}: holds tensor '{name}', which {table[name].file} "
                                  "holds too; remove the stale copy from the folder")
        table[name] = info


def _read_indexed(folder, index_path):
    def fail(problem):
        raise CheckpointError(f"safetensors index {index_path}: {problem}")

    index = _read_json(index_path, "safetensors index", MAX_INDEX_BYTES, COPY_AGAIN)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict):
        fail(f"has no 'weight_map' object from tensor names to shard files; {COPY_AGAIN}")
    shards = []  # first-seen order, each once
    for tensor, shard in weight_map.items():
        # A shard is a plain file name: anything else could point outside the checkpoint folder.
        plain = (isinstance(shard, str) and shard not in ("", ".", "..") and "/" not in shard
                 and (os.altsep is None or os.altsep not in shard) and "\0" not in shard)
        if not plain:
            fail(f"puts tensor '{tensor}' in {shown(shard)}, which is not the name of a file in the "
                 f"checkpoint folder; {COPY_AGAIN}")
        if shard not in shards:
            shards.append(shard)
    table = {}
    for shard in shards:
        if not os.path.isfile(os.path.join(folder, shard)):
            fail(f"lists shard '{shard}', which is not in the folder; copy the missing shard there")
        _merge(table, read_header(os.path.join(folder, shard)))
    for tensor, shard in weight_map.items():
        found = table.get(tensor)
        if found is None or found.file != os.path.join(folder, shard):
            fail(f"puts tensor '{tensor}' in '{shard}', but that shard's header has no such tensor; the index and "
                 f"the shards come from different exports: {RE_EXPORT}")
    return table


def read_tensor_table(folder) -> dict[str, TensorInfo]:
    """Every tensor of the checkpoint folder by name, from the safetensors headers: the shards that
    model.safetensors.index.json lists, else model.safetensors, else every *.safetensors file.

    Raises CheckpointError naming the file for a missing folder, no safetensors file, a damaged
    index or header, an index that disagrees with its shards, or a tensor held by two files.
    """
    folder = os.fspath(folder)
    _require_folder(folder)
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index_path):
        return _read_indexed(folder, index_path)
    single = os.path.join(folder, "model.safetensors")
    if os.path.isfile(single):
        return read_header(single)
    try:
        names = sorted(name for name in os.listdir(folder)
                       if name.endswith(".safetensors") and os.path.isfile(os.path.join(folder, name)))
    except OSError as error:
        raise CheckpointError(f"checkpoint {folder}: cannot be listed ({error.strerror or error}); check the "
                              "folder's permissions") from error
    if not names:
        raise CheckpointError(f"checkpoint {folder}: has no model.safetensors, no model.safetensors.index.json and "
                              "no other *.safetensors file; pass the folder that holds the GLQ checkpoint's weights")
    table = {}
    for name in names:
        _merge(table, read_header(os.path.join(folder, name)))
    return table


def _tensor_name(prefix, leaf):
    return f"{prefix}.{leaf}" if prefix else leaf


# FORMAT.md section 7: Qidxs_e8p for stage 0, Qidxs2..Qidxs4 with _e8p or _e81b for stages 1..3
# (MAX_STAGES); Qidxs_e81b parses too, and is then refused as no recipe.
_STAGE_LEAF = re.compile(r"Qidxs([2-4]?)_(e8p|e81b)")


def _stage_tensors(table, names):
    """For each prefix among `names` with a Qidxs leaf: stage index -> (codebook, TensorInfo)."""
    by_prefix = {}
    for name in names:
        prefix, _, leaf = name.rpartition(".")
        if not leaf.startswith("Qidxs"):
            continue
        match = _STAGE_LEAF.fullmatch(leaf)
        if match is None:
            raise CheckpointError(f"tensor '{name}' (in {table[name].file}) is no stage tensor of FORMAT.md section 7 "
                                  f"(Qidxs_e8p, then Qidxs2..{MAX_STAGES} with _e8p or _e81b); {RE_EXPORT}")
        stage = int(match[1]) - 1 if match[1] else 0
        stages = by_prefix.setdefault(prefix, {})
        if stage in stages:
            other = stages[stage][1]
            raise CheckpointError(f"'{prefix}' has both '{other.name}' (in {other.file}) and '{name}' (in "
                                  f"{table[name].file}), two codebooks for stage {stage}; {RE_EXPORT}")
        stages[stage] = (match[2], table[name])
    return by_prefix


def _natural_key(text):
    # "layers.2" before "layers.10": digit runs compare as numbers (by length, then digits).
    return [(len(part), part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", text))]


def quantized_prefixes(table) -> list[str]:
    """Every prefix with a '*.Qidxs*' tensor, in model order (layers.2 before layers.10).

    Raises CheckpointError for a Qidxs leaf that is no stage name of FORMAT.md section 7, or two
    codebooks for one stage of a prefix.
    """
    return sorted(_stage_tensors(table, table), key=_natural_key)


def _stage_list(kinds):
    return "[" + ", ".join(kind.upper() for kind in kinds) + "]"


def _shape_text(shape):
    return "[" + ", ".join(str(extent) for extent in shape) + "]"


def find_linear(table, prefix, in_features, out_features, block_diagonal=True,
                expected_bpw=None) -> LinearTensors | None:
    """The GLQ tensor set of the linear `prefix` (e.g. "model.layers.0.mlp.down_proj"), checked
    against FORMAT.md sections 4-7 for the model's exact in/out features, or None when the
    checkpoint holds no stage tensor for it (an unquantized linear).

    `expected_bpw` is what config.json's layer_bpw says, if it names the layer. Raises
    CheckpointError naming the tensor and its file for incomplete stages, a sequence that is no
    recipe, a missing tensor, a wrong dtype or shape, a scale of a stage that is absent, or a bpw
    other than expected_bpw.
    """
    stem = _tensor_name(prefix, "Qidxs")
    found = _stage_tensors(table, [name for name in table if name.startswith(stem)]).get(prefix)
    if not found:
        return None
    anchor = found[min(found)][1]  # a stage tensor, to say where the others belong
    anchored = f"('{anchor.name}' is in {anchor.file})"

    count = max(found) + 1
    for stage in range(count):
        if stage not in found:
            expected = " or ".join(f"'{_tensor_name(prefix, stage_tensor_leaf(stage, kind))}'"
                                   for kind in (("e8p",) if stage == 0 else ("e8p", "e81b")))
            raise CheckpointError(f"'{prefix}' has stage tensors up to stage {count - 1} {anchored} but no {expected} "
                                  f"(stage {stage}); the stages are incomplete: {RE_EXPORT}")
    kinds = [found[stage][0] for stage in range(count)]
    bpw = next((bpw for bpw in range(MIN_BPW, MAX_BPW + 1) if stage_kinds(bpw) == kinds), None)
    if bpw is None:
        raise CheckpointError(f"the stage tensors of '{prefix}' {anchored} make the sequence {_stage_list(kinds)}, "
                              "which is no recipe of FORMAT.md section 4 (2 bpw: [E8P], 3: [E8P, E81B], 4: [E8P, "
                              f"E8P], ..., 8: 4 x E8P); {RE_EXPORT}")
    if expected_bpw is not None and expected_bpw != bpw:
        raise CheckpointError(f"'quantization_config.layer_bpw' gives layer '{prefix}' {expected_bpw} bpw, but its "
                              f"stage tensors make it {bpw} bpw {_stage_list(kinds)} {anchored}; {OWN_CONFIG}")

    try:
        m_pad, n_pad = padded_out(out_features, block_diagonal), padded_in(in_features, block_diagonal)
    except ValueError as error:
        raise CheckpointError(f"linear '{prefix}': {error}") from None
    model = (f"the model's linear '{prefix}' is {in_features} -> {out_features} (in -> out), which pads to n_pad "
             f"{n_pad} and m_pad {m_pad}{'' if block_diagonal else ' (legacy single block)'}")

    def tensor(leaf, what=""):
        name = _tensor_name(prefix, leaf)
        if name not in table:
            raise CheckpointError(f"tensor '{name}'{what} is missing {anchored}; every quantized linear has its "
                                  "stage tensors, their scales, SU, SV and Wscale (FORMAT.md section 7): "
                                  f"{RE_EXPORT}")
        return table[name]

    def expect_dtype(info, dtypes):
        if info.dtype not in dtypes:
            raise CheckpointError(f"tensor '{info.name}' (in {info.file}) is {info.dtype}, but FORMAT.md section 7 "
                                  f"stores it as {' or '.join(dtypes)}; {RE_EXPORT}")

    def expect_shape(info, shape, rule, remedy=RE_EXPORT):
        if info.shape != tuple(shape):
            raise CheckpointError(f"tensor '{info.name}' (in {info.file}) has shape {_shape_text(info.shape)}, but "
                                  f"it must be {rule} = {_shape_text(shape)}, since {model}; {remedy}")

    def scalar(info):
        expect_dtype(info, ("F32",))
        if info.shape not in ((), (1,)):
            raise CheckpointError(f"tensor '{info.name}' (in {info.file}) has shape {_shape_text(info.shape)}, but "
                                  f"it is an fp32 scalar (shape [] or [1]); {RE_EXPORT}")
        return info

    stages, scales = [], []
    for stage, kind in enumerate(kinds):
        info = found[stage][1]
        expect_dtype(info, ("I64",))
        # Stage 0 is checked first: when it does not fit, the whole checkpoint is another model's.
        remedy = ("this checkpoint belongs to another model, or config.json's block_diagonal is wrong: use the "
                  "checkpoint exported from this model") if stage == 0 else RE_EXPORT
        if kind == "e8p":
            expect_shape(info, (m_pad // 16, n_pad // 64, 8, 4), "(m_pad/16, n_pad/64, 8, 4)", remedy)
        else:
            expect_shape(info, (m_pad, n_pad // 64), "(m_pad, n_pad/64)", remedy)
        stages.append(info)
        if stage > 0:
            scales.append(scalar(tensor(scale_tensor_leaf(stage), f" (c_{stage}, the scale of stage {stage})")))
    for stage in range(count, MAX_STAGES):
        stray = table.get(_tensor_name(prefix, scale_tensor_leaf(stage)))
        if stray is not None:
            raise CheckpointError(f"tensor '{stray.name}' (in {stray.file}) is the scale of stage {stage}, but "
                                  f"'{prefix}' has only the stages {_stage_list(kinds)}; a stage tensor is missing "
                                  f"or the scale is stray: {RE_EXPORT}")

    su, sv = tensor("SU"), tensor("SV")
    expect_dtype(su, ("F16",))
    expect_shape(su, (m_pad,), "(m_pad)")
    expect_dtype(sv, ("F16",))
    expect_shape(sv, (n_pad,), "(n_pad)")
    wscale = scalar(tensor("Wscale"))

    bias = table.get(_tensor_name(prefix, "bias"))
    if bias is not None:
        expect_dtype(bias, ("F16", "BF16", "F32"))
        expect_shape(bias, (out_features,), "(out_features)")
    return LinearTensors(prefix=prefix, bpw=bpw, in_features=in_features, out_features=out_features, m_pad=m_pad,
                         n_pad=n_pad, stage_kinds=kinds, stages=stages, su=su, sv=sv, wscale=wscale,
                         inv_resid_scales=scales, bias=bias)
