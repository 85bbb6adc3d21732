"""A small Llama-style decoder in plain PyTorch, with Hugging Face's module names, for glqjit's
examples, tests and decode benchmarks.

Decoding is one token per step against a static key/value cache, with the position held in a
device tensor, so that a step has the same shapes every time: torch.compile(fullgraph=True) traces
it once and a CUDA graph can replay it. The prompt is fed through the same step, token by token.
`fused=True` builds the serving layout (qkv_proj, gate_up_proj), which load_glq_checkpoint fills
from the separate shards of a GLQ checkpoint as grouped linears.
"""

from dataclasses import dataclass
import math

import torch
from torch import nn


@dataclass
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    max_position_embeddings: int = 128

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_json(self) -> dict:
        """The fields of a Hugging Face Llama config.json."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": False,
            "torch_dtype": "float16",
        }


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size, dtype=dtype), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        wide = x.float() if x.dtype != torch.float64 else x
        normed = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def _linear(in_features, out_features, dtype):
    return nn.Linear(in_features, out_features, bias=False, dtype=dtype, device="meta")


class Attention(nn.Module):
    def __init__(self, config: LlamaConfig, dtype, fused: bool):
        super().__init__()
        self.config = config
        self.fused = fused
        q_out = config.num_attention_heads * config.head_dim
        kv_out = config.num_key_value_heads * config.head_dim
        self.split = (q_out, kv_out, kv_out)
        if fused:
            self.qkv_proj = _linear(config.hidden_size, sum(self.split), dtype)
        else:
            self.q_proj = _linear(config.hidden_size, q_out, dtype)
            self.k_proj = _linear(config.hidden_size, kv_out, dtype)
            self.v_proj = _linear(config.hidden_size, kv_out, dtype)
        self.o_proj = _linear(q_out, config.hidden_size, dtype)

    def forward(self, x, position, cos, sin, cache_k, cache_v):
        batch = x.shape[0]
        c = self.config
        if self.fused:
            q, k, v = self.qkv_proj(x).split(self.split, dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = _rope(q.view(batch, c.num_attention_heads, c.head_dim), cos, sin)
        k = _rope(k.view(batch, c.num_key_value_heads, c.head_dim), cos, sin)
        v = v.view(batch, c.num_key_value_heads, c.head_dim)
        cache_k.index_copy_(2, position.view(1), k.unsqueeze(2))
        cache_v.index_copy_(2, position.view(1), v.unsqueeze(2))
        # Each key/value head serves `group` query heads: attend per key/value head, no copies.
        group = c.num_attention_heads // c.num_key_value_heads
        q = q.view(batch, c.num_key_value_heads, group, c.head_dim)
        scores = torch.einsum("bkgd,bktd->bkgt", q, cache_k) / math.sqrt(c.head_dim)
        visible = torch.arange(cache_k.shape[2], device=x.device) <= position
        wide = torch.float64 if x.dtype == torch.float64 else torch.float32
        weights = scores.to(wide).masked_fill(~visible, float("-inf")).softmax(-1).to(x.dtype)
        out = torch.einsum("bkgt,bktd->bkgd", weights, cache_v)
        return self.o_proj(out.reshape(batch, -1))


def _rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class MLP(nn.Module):
    def __init__(self, config: LlamaConfig, dtype, fused: bool):
        super().__init__()
        self.fused = fused
        self.intermediate = config.intermediate_size
        if fused:
            self.gate_up_proj = _linear(config.hidden_size, 2 * config.intermediate_size, dtype)
        else:
            self.gate_proj = _linear(config.hidden_size, config.intermediate_size, dtype)
            self.up_proj = _linear(config.hidden_size, config.intermediate_size, dtype)
        self.down_proj = _linear(config.intermediate_size, config.hidden_size, dtype)

    def forward(self, x):
        if self.fused:
            gate, up = self.gate_up_proj(x).split(self.intermediate, dim=-1)
        else:
            gate, up = self.gate_proj(x), self.up_proj(x)
        return self.down_proj(nn.functional.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, config: LlamaConfig, dtype, fused: bool):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype)
        self.self_attn = Attention(config, dtype, fused)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype)
        self.mlp = MLP(config, dtype, fused)

    def forward(self, x, position, cos, sin, cache_k, cache_v):
        x = x + self.self_attn(self.input_layernorm(x), position, cos, sin, cache_k, cache_v)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, config: LlamaConfig, dtype, fused: bool):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, dtype=dtype, device="meta")
        self.layers = nn.ModuleList(DecoderLayer(config, dtype, fused) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, dtype)


class LlamaForCausalLM(nn.Module):
    """model.* and lm_head as in Hugging Face; linears start on the meta device until loaded."""

    def __init__(self, config: LlamaConfig, dtype=torch.float16, fused: bool = False):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config, dtype, fused)
        self.lm_head = _linear(config.hidden_size, config.vocab_size, dtype)

    def new_cache(self, batch: int, device, dtype):
        """The static key/value cache of one generation: (keys, values) per layer."""
        c = self.config
        shape = (batch, c.num_key_value_heads, c.max_position_embeddings, c.head_dim)
        return [(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))
                for _ in range(c.num_hidden_layers)]

    def rope_tables(self, device, dtype):
        c = self.config
        inv_freq = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, device=device, dtype=torch.float64) / c.head_dim))
        angles = torch.outer(torch.arange(c.max_position_embeddings, device=device, dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def step(self, tokens, position, rope, cache):
        """Logits [batch, vocab] of the next token after `tokens` [batch] at `position` (a 0-d tensor)."""
        cos_table, sin_table = rope
        cos = cos_table.index_select(0, position.view(1)).view(1, 1, -1)
        sin = sin_table.index_select(0, position.view(1)).view(1, 1, -1)
        x = self.model.embed_tokens(tokens)
        for layer, (cache_k, cache_v) in zip(self.model.layers, cache):
            x = layer(x, position, cos, sin, cache_k, cache_v)
        return self.lm_head(self.model.norm(x))


def greedy_generate(step, prompt, new_tokens: int, position_buffer, token_buffer):
    """Greedy tokens [batch, prompt + new_tokens] from `step()`, which reads `token_buffer` [batch] and
    `position_buffer` (0-d) and returns logits: an eager step, a compiled one or a graph replay alike.
    Returns (tokens, the logits of every step)."""
    tokens = [prompt[:, i] for i in range(prompt.shape[1])]
    all_logits = []
    for position in range(prompt.shape[1] + new_tokens - 1):
        token_buffer.copy_(tokens[position])
        position_buffer.fill_(position)
        logits = step().clone()
        all_logits.append(logits)
        if position + 1 >= len(tokens):
            tokens.append(logits.argmax(-1))
    return torch.stack(tokens, dim=1), torch.stack(all_logits, dim=1)
