"""load_glq_checkpoint: a GLQ checkpoint's weights into a Hugging Face-style PyTorch model.

Every torch.nn.Linear whose name has a GLQ tensor set in the checkpoint (FORMAT.md section 7)
becomes a planned GLQLinear; a fused linear (qkv_proj, gate_up_proj) whose shards the checkpoint
keeps separately (q_proj, k_proj, v_proj; gate_proj, up_proj) becomes one grouped GLQLinear. The
other tensors of the checkpoint (embeddings, norms, an unquantized lm_head) are copied into the
model's parameters and buffers of the same name. Nothing is changed in the model before the whole
checkpoint has been checked, so a bad checkpoint leaves the model as it was.
"""

from dataclasses import dataclass, field
import mmap
import struct
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .checkpoint import CheckpointError, LinearTensors, find_linear, quantized_prefixes, read_glq_config, read_tensor_table
from .linear import ACTIVATION_DTYPES, GLQLinear, Shard
from .safetensors_io import TensorInfo

__all__ = ["FUSED_SHARDS", "LoadReport", "load_glq_checkpoint"]

# A fused serving linear -> the shards a GLQ checkpoint keeps for it, in output order.
FUSED_SHARDS: Mapping[str, Tuple[str, ...]] = {
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),
    "gate_up_proj": ("gate_proj", "up_proj"),
}

_TORCH_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass
class LoadReport:
    """What load_glq_checkpoint did."""

    quantized: Dict[str, List[str]] = field(default_factory=dict)  # module -> checkpoint prefixes of its shards
    copied: List[str] = field(default_factory=list)  # other checkpoint tensors copied into the model
    missing: List[str] = field(default_factory=list)  # model parameters and buffers the checkpoint lacks
    unused: List[str] = field(default_factory=list)  # checkpoint tensors that match nothing in the model
    read_seconds: float = 0.0
    plan_seconds: float = 0.0


class _TensorReader:
    """Tensors of safetensors files, read through one copy-on-write map per file."""

    def __init__(self):
        self._maps = {}

    def tensor(self, info: TensorInfo, device) -> torch.Tensor:
        if info.dtype not in _TORCH_DTYPES:
            raise CheckpointError(f"tensor '{info.name}' (in {info.file}) is {info.dtype}, which PyTorch cannot hold")
        dtype = _TORCH_DTYPES[info.dtype]
        count = 1
        for extent in info.shape:
            count *= extent
        if count == 0:
            return torch.empty(info.shape, dtype=dtype, device=device)
        host = torch.frombuffer(self._map(info.file), dtype=dtype, count=count, offset=info.begin)
        return host.reshape(info.shape).to(device, copy=True)

    def scalar(self, info: TensorInfo) -> float:
        """An fp32 scalar (the checkpoint reader checked its dtype and shape)."""
        return struct.unpack_from("<f", self._map(info.file), info.begin)[0]

    def _map(self, file_name: str) -> mmap.mmap:
        if file_name not in self._maps:
            with open(file_name, "rb") as file:
                self._maps[file_name] = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
        return self._maps[file_name]


def _shard(linear: LinearTensors, reader: _TensorReader, device) -> Shard:
    return Shard(
        in_features=linear.in_features,
        out_features=linear.out_features,
        bpw=linear.bpw,
        stages=[reader.tensor(stage, device) for stage in linear.stages],
        su=reader.tensor(linear.su, device),
        sv=reader.tensor(linear.sv, device),
        wscale=reader.scalar(linear.wscale),
        inv_resid_scales=[reader.scalar(scale) for scale in linear.inv_resid_scales],
        bias=None if linear.bias is None else reader.tensor(linear.bias, device),
    )


def _shard_out_features(table: Mapping[str, TensorInfo], prefix: str) -> int:
    """A shard's output features as its tensors give them: the bias length, else m_pad."""
    bias = table.get(f"{prefix}.bias")
    if bias is not None and len(bias.shape) == 1:
        return bias.shape[0]
    return table[f"{prefix}.Qidxs_e8p"].shape[0] * 16


def _find_quantized(
    name: str,
    module: torch.nn.Linear,
    table: Mapping[str, TensorInfo],
    block_diagonal: bool,
    layer_bpw: Mapping[str, int],
    fused_shards: Mapping[str, Sequence[str]],
) -> Optional[List[LinearTensors]]:
    """The checkpoint's tensor sets for one nn.Linear of the model: one, several shards, or None."""
    found = find_linear(table, name, module.in_features, module.out_features, block_diagonal, layer_bpw.get(name))
    if found is not None:
        return [found]
    parent, _, leaf = name.rpartition(".")
    if leaf not in fused_shards:
        return None
    prefixes = [f"{parent}.{shard}" if parent else shard for shard in fused_shards[leaf]]
    present = [prefix for prefix in prefixes if f"{prefix}.Qidxs_e8p" in table]
    if not present:
        return None
    if len(present) != len(prefixes):
        absent = [prefix for prefix in prefixes if prefix not in present]
        raise CheckpointError(
            f"the model's fused linear '{name}' needs the shards {prefixes}, but the checkpoint has no "
            f"'{absent[0]}.Qidxs_e8p'; the checkpoint is incomplete or belongs to another model"
        )
    outs = [_shard_out_features(table, prefix) for prefix in prefixes]
    if sum(outs) != module.out_features:
        raise CheckpointError(
            f"the model's fused linear '{name}' has {module.out_features} out_features, but its shards {prefixes} "
            f"hold {outs} (sum {sum(outs)}); the checkpoint belongs to another model"
        )
    return [
        find_linear(table, prefix, module.in_features, out, block_diagonal, layer_bpw.get(prefix))
        for prefix, out in zip(prefixes, outs)
    ]


def _check_bias(name: str, module: torch.nn.Linear, shards: List[LinearTensors]) -> None:
    for shard in shards:
        if (module.bias is not None) != (shard.bias is not None):
            raise CheckpointError(
                f"the model's linear '{name}' {'has' if module.bias is not None else 'has no'} bias, but the "
                f"checkpoint {'has no' if shard.bias is None else 'has a'} tensor '{shard.prefix}.bias'; build the "
                "model from the config.json the checkpoint was exported with"
            )


def _activation_dtype(module: torch.nn.Linear, dtype: Optional[torch.dtype]) -> torch.dtype:
    if dtype is not None:
        return dtype
    return module.weight.dtype if module.weight.dtype in ACTIVATION_DTYPES else torch.float16


def _put(model: torch.nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Sets a parameter or buffer by its state_dict name; works for a model built on the meta device."""
    owner_name, _, leaf = name.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    if leaf in owner._parameters:
        owner._parameters[leaf] = torch.nn.Parameter(tensor, requires_grad=False)
    else:
        owner._buffers[leaf] = tensor


def load_glq_checkpoint(
    model: torch.nn.Module,
    folder,
    *,
    device=None,
    dtype: Optional[torch.dtype] = None,
    max_batch: int = 64,
    lazy_buckets: bool = False,
    strict: bool = True,
    fused_shards: Mapping[str, Sequence[str]] = FUSED_SHARDS,
) -> LoadReport:
    """Loads the GLQ checkpoint in `folder` into `model` and plans its quantized linears.

    device: where the weights go (default: the current CUDA device). dtype: the activation dtype of
    the GLQLinears (default: each replaced linear's weight dtype where it is fp16 or bf16, else
    fp16). max_batch: the most rows a forward may take. strict: raise when a parameter or buffer of
    the model is not in the checkpoint (else it is listed in the report's `missing`). Raises
    CheckpointError, naming the tensor and the fix, for a checkpoint that does not match the model;
    the model is then unchanged.
    """
    started = time.perf_counter()
    device = torch.device("cuda", torch.cuda.current_device()) if device is None else torch.device(device)
    config = read_glq_config(folder)
    table = read_tensor_table(folder)
    layer_bpw = config.layer_bpw or {}
    report = LoadReport()

    plans = {}  # module name -> its tensor sets
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            shards = _find_quantized(name, module, table, config.block_diagonal, layer_bpw, fused_shards)
            if shards is not None:
                _check_bias(name, module, shards)
                plans[name] = shards
    used_prefixes = {shard.prefix for shards in plans.values() for shard in shards}
    unmatched = [prefix for prefix in quantized_prefixes(table) if prefix not in used_prefixes]
    if unmatched:
        raise CheckpointError(
            f"the checkpoint's quantized linear '{unmatched[0]}' ({len(unmatched)} in all) matches no torch.nn.Linear "
            "of the model; build the model from the checkpoint's config.json, with the same module names"
        )
    unlisted = sorted(set(layer_bpw) - used_prefixes)
    if unlisted:
        raise CheckpointError(
            f"{config.path}: quantization_config.layer_bpw lists '{unlisted[0]}', which has no tensors in the "
            "checkpoint; a shard file is missing, or the config belongs to another export"
        )
    quantized_tensors = {name for name in table if name.rpartition(".")[0] in used_prefixes}
    model_state = {
        key: value
        for key, value in model.state_dict(keep_vars=True).items()
        if key.rpartition(".")[0] not in plans
    }
    for key, value in model_state.items():
        info = table.get(key)
        if info is not None and tuple(info.shape) != tuple(value.shape):
            raise CheckpointError(
                f"tensor '{key}' (in {info.file}) has shape {list(info.shape)}, but the model's has {list(value.shape)}; "
                "build the model from the checkpoint's config.json"
            )
    report.missing = sorted(key for key in model_state if key not in table)
    if strict and report.missing:
        raise CheckpointError(
            f"the checkpoint has no tensor '{report.missing[0]}' ({len(report.missing)} of the model's parameters and "
            "buffers in all); pass strict=False to keep the model's own values for them"
        )

    # Read and plan everything first, then change the model: a failure leaves it as it was.
    reader = _TensorReader()
    replacements = {}
    for name, shards in plans.items():
        replacements[name] = GLQLinear(
            [_shard(shard, reader, device) for shard in shards],
            dtype=_activation_dtype(model.get_submodule(name), dtype),
            max_batch=max_batch,
            block_diagonal=config.block_diagonal,
            lazy_buckets=lazy_buckets,
        )
        report.quantized[name] = [shard.prefix for shard in shards]
    copies = {}
    for key, value in model_state.items():
        if key in table:
            loaded = reader.tensor(table[key], device)
            copies[key] = loaded.to(value.dtype) if value.is_floating_point() else loaded
    report.read_seconds = time.perf_counter() - started

    planning = time.perf_counter()
    for replacement in replacements.values():
        replacement.plan()
    report.plan_seconds = time.perf_counter() - planning

    for name, replacement in replacements.items():
        owner_name, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(owner_name) if owner_name else model, leaf, replacement)
    for key, tensor in copies.items():
        _put(model, key, tensor)
    report.copied = sorted(copies)
    report.unused = sorted(set(table) - quantized_tensors - set(copies))
    return report
