"""GLQLinear: a torch.nn.Module over one glqjit plan (one quantized linear, or a fused group).

The module owns the checkpoint tensors as buffers (so .to(), .cuda() and state_dict() handle
them) and the plan made from them. plan() is the slow step (it loads or compiles kernels) and
belongs at model load; forward() only launches, so it is safe inside torch.compile(fullgraph=True)
and CUDA graph capture.
"""

from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence, Union
import weakref

import torch

from . import _C, ops
from .format import scale_tensor_leaf, stage_kinds, stage_tensor_leaf

__all__ = ["GLQLinear", "Shard"]

ACTIVATION_DTYPES = (torch.float16, torch.bfloat16)
MAX_SHARDS = 8  # glqjit_linear_group_create's limit


@dataclass
class Shard:
    """One quantized linear's tensors as a GLQ checkpoint holds them (FORMAT.md section 7)."""

    in_features: int
    out_features: int
    bpw: int
    stages: List[torch.Tensor]  # int64 packed codes: Qidxs_e8p, then Qidxs2_*, ...
    su: torch.Tensor  # fp16, m_pad
    sv: torch.Tensor  # fp16, n_pad
    wscale: float
    inv_resid_scales: List[float] = field(default_factory=list)  # c_1, c_2, c_3 where the stage exists
    bias: Optional[torch.Tensor] = None  # out_features values

    @classmethod
    def from_leaves(cls, in_features: int, out_features: int, bpw: int, leaves: Mapping[str, torch.Tensor]) -> "Shard":
        """A Shard from one linear's tensors keyed by their section 7 leaf names ("Qidxs_e8p", "SU",
        "Wscale", "inv_resid_scale", ..., "bias" where present); the scalars are read to floats."""
        kinds = stage_kinds(bpw)
        return cls(
            in_features=in_features,
            out_features=out_features,
            bpw=bpw,
            stages=[leaves[stage_tensor_leaf(stage, kind)] for stage, kind in enumerate(kinds)],
            su=leaves["SU"],
            sv=leaves["SV"],
            wscale=float(leaves["Wscale"]),
            inv_resid_scales=[float(leaves[scale_tensor_leaf(stage)]) for stage in range(1, len(kinds))],
            bias=leaves.get("bias"),
        )


class GLQLinear(torch.nn.Module):
    """y = x W^T (+ bias) for a GLQ-quantized W; several shards make one fused linear.

    shards: one Shard, or up to 8 that read the same input (q/k/v, gate/up): their outputs sit
    side by side in y, shard 0 first, and run as one glqjit group.
    dtype: the activation and output dtype, torch.float16 or torch.bfloat16; it follows a later
    module.to(torch.bfloat16) or .half().
    max_batch: the most rows (x.numel() / in_features) a forward may take.
    block_diagonal: False for legacy checkpoints (config.json block_diagonal: false).
    lazy_buckets: compile each batch bucket at its first forward instead of at plan (never
    inside CUDA graph capture: warm every batch size up before capturing).
    """

    def __init__(
        self,
        shards: Union[Shard, Sequence[Shard]],
        *,
        dtype: torch.dtype = torch.float16,
        max_batch: int = 64,
        block_diagonal: bool = True,
        lazy_buckets: bool = False,
        allow_nondeterministic: bool = False,
    ):
        super().__init__()
        shards = [shards] if isinstance(shards, Shard) else list(shards)
        if not 1 <= len(shards) <= MAX_SHARDS:
            raise ValueError(f"GLQLinear takes 1 to {MAX_SHARDS} shards, not {len(shards)}")
        if any(shard.in_features != shards[0].in_features for shard in shards):
            raise ValueError(
                "GLQLinear: the shards read different in_features "
                f"({[shard.in_features for shard in shards]}); a fused linear's shards read the same input"
            )
        if dtype not in ACTIVATION_DTYPES:
            raise ValueError(f"GLQLinear: dtype must be torch.float16 or torch.bfloat16, not {dtype}")
        self.in_features = shards[0].in_features
        self.shard_out_features = [shard.out_features for shard in shards]
        self.out_features = sum(self.shard_out_features)
        self.dtype = dtype
        self.max_batch = int(max_batch)
        self.flags = (
            (0 if block_diagonal else _C.FLAG_LEGACY_SINGLE_BLOCK_RHT)
            | (_C.FLAG_LAZY_BUCKETS if lazy_buckets else 0)
            | (_C.FLAG_ALLOW_NONDETERMINISTIC if allow_nondeterministic else 0)
        )
        self._bpw = [shard.bpw for shard in shards]
        self._scales = [(float(shard.wscale), [float(c) for c in shard.inv_resid_scales]) for shard in shards]
        # Buffer names per shard, in the order glqjit._C.plan holds the tensors and the operator
        # checks them: stages, SU, SV, bias.
        self._shard_buffers: List[List[str]] = []
        for index, shard in enumerate(shards):
            prefix = "" if len(shards) == 1 else f"shard{index}_"
            kinds = stage_kinds(shard.bpw)
            if len(shard.stages) != len(kinds):
                raise ValueError(
                    f"GLQLinear: shard {index} is {shard.bpw} bpw, which has {len(kinds)} stages "
                    f"(FORMAT.md section 4), but {len(shard.stages)} stage tensors were given"
                )
            names = []
            for stage, (kind, codes) in enumerate(zip(kinds, shard.stages)):
                names.append(prefix + stage_tensor_leaf(stage, kind))
                self.register_buffer(names[-1], codes)
            for leaf, tensor in (("SU", shard.su), ("SV", shard.sv), ("bias", shard.bias)):
                if tensor is None:
                    continue
                names.append(prefix + leaf)
                self.register_buffer(names[-1], tensor.to(dtype) if leaf == "bias" else tensor.to(torch.float16))
            self._shard_buffers.append(names)
        self._weight_names = [name for names in self._shard_buffers for name in names]
        self._plan = None
        self._release = None
        self._planned_state = None
        self._keep_planned = False

    @property
    def planned(self) -> bool:
        return self._plan is not None

    def plan(self) -> "GLQLinear":
        """Makes the plan from the current tensors (they must be on a CUDA device); replaces any old
        one. From then on the module keeps itself planned: moving or casting it replans (or drops
        the plan while its tensors are off the GPU), until release()."""
        self._drop_plan()
        shards = []
        for index, names in enumerate(self._shard_buffers):
            tensors = [getattr(self, name) for name in names]
            stage_count = len(stage_kinds(self._bpw[index]))
            wscale, inv_resid_scales = self._scales[index]
            shards.append(
                _C.Shard(
                    in_features=self.in_features,
                    out_features=self.shard_out_features[index],
                    bpw=self._bpw[index],
                    stages=tensors[:stage_count],
                    su=tensors[stage_count],
                    sv=tensors[stage_count + 1],
                    bias=tensors[stage_count + 2] if len(tensors) > stage_count + 2 else None,
                    wscale=wscale,
                    inv_resid_scales=inv_resid_scales,
                )
            )
        self._plan = _C.plan(shards, self.dtype, self.max_batch, self.flags)
        self._release = weakref.finalize(self, _C.release, self._plan)
        self._planned_state = self._tensor_state()
        self._keep_planned = True
        return self

    def release(self) -> None:
        """Drops the plan (and the device memory glqjit holds for it); forward needs plan() again."""
        self._drop_plan()
        self._keep_planned = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._plan is None:
            raise RuntimeError(
                "GLQLinear has no plan: call .plan() once its tensors are on the GPU "
                "(load_glq_checkpoint plans every linear it makes)"
            )
        weights = [getattr(self, name) for name in self._weight_names]
        operator = ops.linear if len(self._shard_buffers) == 1 else ops.linear_group
        return operator(x, weights, self._plan, self.out_features)

    def _apply(self, fn, *args, **kwargs):
        # .to()/.cuda()/.half() move and cast every buffer; the format fixes SU and SV as fp16,
        # the activation dtype follows a cast to fp16 or bf16, and a plan follows the tensors.
        followed = fn(torch.empty(0, dtype=self.dtype)).dtype
        if followed in ACTIVATION_DTYPES:
            self.dtype = followed
        super()._apply(fn, *args, **kwargs)
        for names in self._shard_buffers:
            for name in names:
                tensor = getattr(self, name)
                wanted = self.dtype if name.endswith("bias") else torch.float16 if tensor.is_floating_point() else None
                if wanted is not None and tensor.dtype != wanted:
                    setattr(self, name, tensor.to(wanted))
        if self._keep_planned and (self._plan is None or self._tensor_state() != self._planned_state):
            self._follow_tensors()
        return self

    def _load_from_state_dict(self, *args, **kwargs):
        # E81B stages are repacked into the plan's own memory, so new values need a new plan.
        super()._load_from_state_dict(*args, **kwargs)
        if self._keep_planned:
            self._follow_tensors()

    def _tensor_state(self):
        return self.dtype, [getattr(self, name).data_ptr() for name in self._weight_names]

    def _follow_tensors(self) -> None:
        if all(getattr(self, name).is_cuda for name in self._weight_names):
            self.plan()
        else:
            self._drop_plan()

    def _drop_plan(self) -> None:
        if self._release is not None:
            self._release()
        self._plan = None
        self._release = None
        self._planned_state = None

    def extra_repr(self) -> str:
        shards = "" if len(self._bpw) == 1 else f", shards={self.shard_out_features}"
        bpw = self._bpw[0] if len(set(self._bpw)) == 1 else self._bpw
        return (
            f"in_features={self.in_features}, out_features={self.out_features}{shards}, bpw={bpw}, "
            f"dtype={self.dtype}, max_batch={self.max_batch}, planned={self.planned}"
        )
