"""The operators torch.ops.glqjit.linear and torch.ops.glqjit.linear_group.

Both take (x, weights, plan, out_features) and return x's shape with the last dimension
out_features: `plan` is the id of a plan made by glqjit._C.plan at load time, `weights` the
tensors it reads in place (so that torch.compile sees them as inputs, and the operator can refuse
a plan whose tensors have moved). The CUDA kernels are registered by the extension; the fake
implementation below gives torch.compile the output's shape and dtype without running anything,
for symbolic batch sizes too.
"""

import torch

from . import _C

__all__ = ["configure", "linear", "linear_group"]


def _output_like(x, weights, plan, out_features):
    return x.new_empty((*x.shape[:-1], out_features))


def _register_fake(name):
    qualified = f"glqjit::{name}"
    if hasattr(torch.library, "register_fake"):  # torch 2.4 and newer
        torch.library.register_fake(qualified)(_output_like)
    elif hasattr(torch.library, "impl_abstract"):  # torch 2.1 to 2.3
        torch.library.impl_abstract(qualified)(_output_like)
    else:  # older torch: a Meta kernel is what its tracing runs
        _meta_library.impl(name, _output_like, "Meta")


_meta_library = None if hasattr(torch.library, "impl_abstract") else torch.library.Library("glqjit", "IMPL")
for _name in ("linear", "linear_group"):
    _register_fake(_name)

linear = torch.ops.glqjit.linear
linear_group = torch.ops.glqjit.linear_group


def configure(cache_path=None, no_jit=False, read_only_cache=False):
    """Sets the kernel store options for the contexts glqjit opens; call before the first plan.

    cache_path: the store (default: $GLQJIT_CACHE, else $XDG_CACHE_HOME/glqjit/glqjit.db, else
    ~/.cache/glqjit/glqjit.db); no_jit: never compile, a kernel missing from the store is an
    error (serving images shipped with a tuned store); read_only_cache: never write the store.
    """
    _C.configure(None if cache_path is None else str(cache_path), bool(no_jit), bool(read_only_cache))
