"""Writes a GLQ checkpoint of random codes for a LlamaConfig: config.json with its
quantization_config, and model.safetensors with one FORMAT.md section 7 tensor set per quantized
linear plus the unquantized fp16 embeddings, norms and lm_head. For tests and benchmarks: the
model's outputs are meaningless, its numerics and speed are real.

    python3 make_checkpoint.py FOLDER --bpw 2     # a tiny model; --help for the options
"""

import argparse
import json
import math
import os

import torch

from glqjit_path import add_glqjit_to_path
from llama import LlamaConfig

add_glqjit_to_path()
from glqjit.format import padded_in, padded_out, scale_tensor_leaf, stage_kinds, stage_tensor_leaf  # noqa: E402
from glqjit.safetensors_io import write_safetensors  # noqa: E402

ROLES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# FORMAT.md section 4: the residual scale in front of an E81B stage, and in front of an E8P one.
RESIDUAL_SCALE = {"e81b": 2.04, "e8p": 3.45}
SAFETENSORS_DTYPE = {torch.int64: "I64", torch.float16: "F16", torch.float32: "F32", torch.bfloat16: "BF16"}


def role_shape(config: LlamaConfig, role: str):
    """(in_features, out_features) of one linear of a decoder layer."""
    q_out = config.num_attention_heads * config.head_dim
    kv_out = config.num_key_value_heads * config.head_dim
    return {
        "q_proj": (config.hidden_size, q_out),
        "k_proj": (config.hidden_size, kv_out),
        "v_proj": (config.hidden_size, kv_out),
        "o_proj": (q_out, config.hidden_size),
        "gate_proj": (config.hidden_size, config.intermediate_size),
        "up_proj": (config.hidden_size, config.intermediate_size),
        "down_proj": (config.intermediate_size, config.hidden_size),
    }[role]


def random_glq_linear(in_features: int, out_features: int, bpw: int, generator: torch.Generator):
    """One linear's section 7 tensors, keyed by leaf name, on the generator's device: random codes,
    random signs, and a Wscale that keeps the output's scale near the input's."""
    device = generator.device
    m_pad, n_pad = padded_out(out_features), padded_in(in_features)
    tensors = {}
    scale = 1.0
    for stage, kind in enumerate(stage_kinds(bpw)):
        shape = (m_pad // 16, n_pad // 64, 8, 4) if kind == "e8p" else (m_pad, n_pad // 64)
        tensors[stage_tensor_leaf(stage, kind)] = torch.randint(
            -(2**63), 2**63 - 1, shape, dtype=torch.int64, generator=generator, device=device
        )
        if stage > 0:
            scale /= RESIDUAL_SCALE[kind]
            tensors[scale_tensor_leaf(stage)] = torch.tensor(scale, dtype=torch.float32)
    for leaf, size in (("SU", m_pad), ("SV", n_pad)):
        tensors[leaf] = (torch.randint(0, 2, (size,), generator=generator, device=device) * 2 - 1).half()
    tensors["Wscale"] = torch.tensor(1.0 / math.sqrt(in_features), dtype=torch.float32)
    return tensors


def _entry(tensor: torch.Tensor):
    flat = tensor.contiguous().reshape(-1)
    return SAFETENSORS_DTYPE[tensor.dtype], list(tensor.shape), flat.view(torch.uint8).numpy().tobytes()


def write_random_checkpoint(folder, config: LlamaConfig, layer_bpw, seed: int = 0):
    """Writes the checkpoint; layer_bpw(layer, role) -> bpw. Returns every tensor written, by name."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    bpw_by_name = {}
    for layer in range(config.num_hidden_layers):
        for role in ROLES:
            block = "self_attn" if role in ROLES[:4] else "mlp"
            prefix = f"model.layers.{layer}.{block}.{role}"
            bpw_by_name[prefix] = layer_bpw(layer, role)
            in_features, out_features = role_shape(config, role)
            for leaf, tensor in random_glq_linear(in_features, out_features, bpw_by_name[prefix], generator).items():
                tensors[f"{prefix}.{leaf}"] = tensor
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"model.layers.{layer}.{norm}.weight"] = _norm_weight(config, generator)
    tensors["model.embed_tokens.weight"] = torch.randn(
        config.vocab_size, config.hidden_size, generator=generator
    ).to(torch.float16)
    tensors["model.norm.weight"] = _norm_weight(config, generator)
    tensors["lm_head.weight"] = (
        torch.randn(config.vocab_size, config.hidden_size, generator=generator) / math.sqrt(config.hidden_size)
    ).to(torch.float16)

    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), {name: _entry(t) for name, t in tensors.items()})
    config_json = config.to_json()
    config_json["quantization_config"] = {
        "quant_method": "glq",
        "codebook": "e8p",
        "block_diagonal": True,
        "layer_bpw": bpw_by_name,
    }
    with open(os.path.join(folder, "config.json"), "w") as file:
        json.dump(config_json, file, indent=2)
    return tensors


def _norm_weight(config: LlamaConfig, generator: torch.Generator):
    return (1.0 + 0.1 * torch.randn(config.hidden_size, generator=generator)).to(torch.float16)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--bpw", type=int, default=2, help="bits per weight of every linear, 2..8 (default 2)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--intermediate", type=int, default=1536)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--kv-heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = LlamaConfig(args.vocab, args.hidden, args.intermediate, args.layers, args.heads, args.kv_heads)
    write_random_checkpoint(args.folder, config, lambda layer, role: args.bpw, args.seed)
    print(f"wrote {args.folder}: {args.layers} layers at {args.bpw} bpw")


if __name__ == "__main__":
    main()
