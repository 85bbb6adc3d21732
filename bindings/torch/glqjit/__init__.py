"""glqjit for PyTorch: GLQ (E8P-RVQ) quantized linears run by libglqjit.

    import glqjit
    report = glqjit.load_glq_checkpoint(model, "path/to/glq-checkpoint", device="cuda")
    # model's quantized linears are now glqjit.GLQLinear modules, planned and ready:
    # eager, torch.compile(fullgraph=True) and CUDA graph capture all work.

The checkpoint reading (glqjit.checkpoint, glqjit.safetensors_io, glqjit.format) needs only the
standard library; everything else needs PyTorch and the compiled extension glqjit._C, and is
imported on first use so that the pure-Python parts work where neither is installed.
"""

import importlib

__version__ = "0.1.0"

# Public name -> the submodule that defines it (imported when the name is first used).
_LAZY = {
    "GLQLinear": "linear",
    "Shard": "linear",
    "load_glq_checkpoint": "loader",
    "LoadReport": "loader",
    "configure": "ops",
    "CheckpointError": "checkpoint",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'glqjit' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
