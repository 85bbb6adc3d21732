"""GPU tests of glqjit's PyTorch binding (pytest; run on a machine with a GPU, PyTorch and the
built extension, as README.md's "PyTorch" section says). Without them every test is skipped with
the reason."""

import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bindings", "torch"))
sys.path.insert(0, os.path.join(ROOT, "examples", "torch_llama"))

try:
    import torch
except ImportError as error:  # pragma: no cover - depends on the machine
    _SKIP = f"PyTorch is not installed ({error})"
else:
    try:
        import glqjit.ops  # noqa: F401  (loads glqjit._C and registers the operators)
    except ImportError as error:
        _SKIP = f"glqjit._C is not built ({error}); build it as README.md's PyTorch section says"
    else:
        _SKIP = None if torch.cuda.is_available() else "no CUDA device"


def pytest_collection_modifyitems(config, items):
    if _SKIP:
        print(f"\nskipping glqjit's PyTorch tests: {_SKIP}")
        for item in items:
            item.add_marker(pytest.mark.skip(reason=_SKIP))


def relative_l2(actual, expected):
    """||actual - expected|| / ||expected||, in fp64; NaN anywhere gives NaN, which fails any bound."""
    actual, expected = actual.double(), expected.double()
    return ((actual - expected).norm() / expected.norm()).item()


# FORMAT.md section 8: the relative L2 error allowed against the fp64 evaluation, by output dtype.
BOUND = {"float16": 2e-3, "bfloat16": 4e-3}
