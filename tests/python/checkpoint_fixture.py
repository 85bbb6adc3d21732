"""Writes small GLQ checkpoint folders for the tests: config.json and safetensors files holding
random int64 codes, fp16 +-1 sign vectors and fp32 scales (FORMAT.md sections 4-7).

Names, recipes and padded sizes are spelled out here from FORMAT.md rather than taken from
glqjit.format, so that a mistake there cannot hide by being made on both sides of a test.
"""

import json
import os
import struct

from glqjit.safetensors_io import DTYPE_ITEMSIZE, write_safetensors

# FORMAT.md sections 4 and 7: the stage tensors of each bpw, in stage order.
STAGE_LEAVES = {
    2: ["Qidxs_e8p"],
    3: ["Qidxs_e8p", "Qidxs2_e81b"],
    4: ["Qidxs_e8p", "Qidxs2_e8p"],
    5: ["Qidxs_e8p", "Qidxs2_e8p", "Qidxs3_e81b"],
    6: ["Qidxs_e8p", "Qidxs2_e8p", "Qidxs3_e8p"],
    7: ["Qidxs_e8p", "Qidxs2_e8p", "Qidxs3_e8p", "Qidxs4_e81b"],
    8: ["Qidxs_e8p", "Qidxs2_e8p", "Qidxs3_e8p", "Qidxs4_e8p"],
}
# c_1, c_2, c_3: the scales of stages 1, 2, 3.
SCALE_LEAVES = ["inv_resid_scale", "inv_resid_scale2", "inv_resid_scale3"]


def padded_sizes(in_features, out_features, block_diagonal=True):
    """(m_pad, n_pad) of FORMAT.md section 5; legacy files take the next power of two of whole tiles."""
    if block_diagonal:
        return -(-out_features // 16) * 16, -(-in_features // 64) * 64
    return max(16, 1 << (out_features - 1).bit_length()), max(64, 1 << (in_features - 1).bit_length())


def random_tensor(rng, dtype, shape):
    """A (dtype, shape, bytes) entry of random bytes: any 8 bytes are an int64, any codes are valid."""
    count = 1
    for extent in shape:
        count *= extent
    return dtype, list(shape), rng.randbytes(count * DTYPE_ITEMSIZE[dtype])


def signs_f16(rng, count):
    return "F16", [count], struct.pack(f"<{count}e", *(rng.choice((-1.0, 1.0)) for _ in range(count)))


def scalar_f32(value, shape=()):
    return "F32", list(shape), struct.pack("<f", value)


def glq_linear(rng, prefix, in_features, out_features, bpw, bias_dtype=None, block_diagonal=True):
    """The tensor set of one quantized linear, name -> (dtype, shape, bytes)."""
    m_pad, n_pad = padded_sizes(in_features, out_features, block_diagonal)
    tensors = {}
    for stage, leaf in enumerate(STAGE_LEAVES[bpw]):
        shape = (m_pad // 16, n_pad // 64, 8, 4) if leaf.endswith("_e8p") else (m_pad, n_pad // 64)
        tensors[f"{prefix}.{leaf}"] = random_tensor(rng, "I64", shape)
        if stage > 0:
            tensors[f"{prefix}.{SCALE_LEAVES[stage - 1]}"] = scalar_f32(rng.uniform(0.01, 0.5))
    tensors[f"{prefix}.SU"] = signs_f16(rng, m_pad)
    tensors[f"{prefix}.SV"] = signs_f16(rng, n_pad)
    tensors[f"{prefix}.Wscale"] = scalar_f32(rng.uniform(0.5, 2.0), (1,))
    if bias_dtype is not None:
        tensors[f"{prefix}.bias"] = random_tensor(rng, bias_dtype, (out_features,))
    return tensors


def glq_quantization(**overrides):
    """A GLQ quantization_config; an override of None drops the key."""
    config = {"quant_method": "glq", "codebook": "e8p"}
    config.update(overrides)
    return {key: value for key, value in config.items() if value is not None}


def write_config(folder, quantization_config):
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as file:
        json.dump({"model_type": "llama", "quantization_config": quantization_config}, file)


def write_checkpoint(folder, tensors, quantization_config=None, shards=None):
    """config.json and model.safetensors, or with `shards` (file name -> tensor names) one file per
    shard and the model.safetensors.index.json that maps each tensor to its shard."""
    write_config(folder, glq_quantization() if quantization_config is None else quantization_config)
    if shards is None:
        write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
        return
    weight_map = {}
    for shard, names in shards.items():
        write_safetensors(os.path.join(folder, shard), {name: tensors[name] for name in names})
        weight_map.update({name: shard for name in names})
    write_index(folder, weight_map)


def write_index(folder, weight_map):
    with open(os.path.join(folder, "model.safetensors.index.json"), "w", encoding="utf-8") as file:
        json.dump({"metadata": {}, "weight_map": weight_map}, file)
