"""Random GLQ layers on the GPU for the binding's tests, with their fp64 dense weights."""

import torch

from glqjit.linear import Shard
from glqjit.reference import dense_weight
from make_checkpoint import random_glq_linear

from glqjit.format import scale_tensor_leaf, stage_kinds, stage_tensor_leaf


def random_shard(in_features, out_features, bpw, generator, device="cuda", bias_dtype=None):
    """A Shard of random codes on `device` and the fp64 dense weight [out, in] it stands for."""
    leaves = random_glq_linear(in_features, out_features, bpw, generator)
    kinds = stage_kinds(bpw)
    stages = [leaves[stage_tensor_leaf(s, kind)].to(device) for s, kind in enumerate(kinds)]
    scales = [leaves[scale_tensor_leaf(s)].item() for s in range(1, len(kinds))]
    bias = None
    if bias_dtype is not None:
        bias = torch.randn(out_features, generator=generator).to(device, bias_dtype)
    shard = Shard(
        in_features=in_features,
        out_features=out_features,
        bpw=bpw,
        stages=stages,
        su=leaves["SU"].to(device),
        sv=leaves["SV"].to(device),
        wscale=leaves["Wscale"].item(),
        inv_resid_scales=scales,
        bias=bias,
    )
    weight = dense_weight(stages, kinds, shard.su, shard.sv, shard.wscale, scales, in_features, out_features)
    return shard, weight


def reference(x, weight, bias=None):
    """x W^T (+ bias) in fp64."""
    y = x.double() @ weight.t()
    return y if bias is None else y + bias.double()
