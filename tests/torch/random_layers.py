"""Random GLQ layers on the GPU for the binding's tests, with their fp64 dense weights."""

import torch

from glqjit.linear import Shard
from glqjit.reference import dense_weight
from make_checkpoint import random_glq_linear

from glqjit.format import stage_kinds


def random_shard(in_features, out_features, bpw, generator, device="cuda", bias_dtype=None):
    """A Shard of random codes on `device` and the fp64 dense weight [out, in] it stands for."""
    leaves = {leaf: tensor.to(device) for leaf, tensor in random_glq_linear(in_features, out_features, bpw, generator).items()}
    if bias_dtype is not None:
        leaves["bias"] = torch.randn(out_features, generator=generator).to(device, bias_dtype)
    shard = Shard.from_leaves(in_features, out_features, bpw, leaves)
    weight = dense_weight(shard.stages, stage_kinds(bpw), shard.su, shard.sv, shard.wscale, shard.inv_resid_scales,
                          in_features, out_features)
    return shard, weight


def reference(x, weight, bias=None):
    """x W^T (+ bias) in fp64."""
    y = x.double() @ weight.t()
    return y if bias is None else y + bias.double()
