"""A tiny Llama-style model from a real GLQ checkpoint (written by make_checkpoint.py), loaded
by load_glq_checkpoint: the same greedy tokens eager, compiled and graph-replayed, and logits
that match a float64 evaluation of FORMAT.md section 1 within section 8's bound."""

import os

import pytest
import torch

from conftest import BOUND, relative_l2
from glqjit import CheckpointError, GLQLinear, load_glq_checkpoint
from glqjit.reference import dense_weight
from llama import LlamaConfig, LlamaForCausalLM, greedy_generate
from make_checkpoint import role_shape, write_random_checkpoint

from glqjit.format import stage_kinds
from glqjit.linear import Shard

# hidden 384 makes Hadamard blocks 256 + 128; down_proj's 1008 inputs pad to 1024.
CONFIG = LlamaConfig(
    vocab_size=512, hidden_size=384, intermediate_size=1008, num_hidden_layers=3,
    num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=32,
)
LAYER_BPW = (2, 3, 4)  # one bpw per layer
PROMPT, NEW_TOKENS, BATCH = 4, 12, 2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama-glq")
    tensors = write_random_checkpoint(folder, CONFIG, lambda layer, role: LAYER_BPW[layer], seed=1234)
    return folder, tensors


def loaded_model(folder, fused=False):
    model = LlamaForCausalLM(CONFIG, dtype=torch.float16, fused=fused)
    report = load_glq_checkpoint(model, folder, max_batch=BATCH)
    return model.eval(), report


class Decoder:
    """The static buffers one generation reads and writes: token, position, rope tables, cache."""

    def __init__(self, model):
        self.model = model
        self.tokens = torch.zeros(BATCH, dtype=torch.long, device="cuda")
        self.position = torch.zeros((), dtype=torch.long, device="cuda")
        self.rope = model.rope_tables("cuda", torch.float32)
        self.cache = model.new_cache(BATCH, "cuda", torch.float16)

    def reset(self):
        for keys, values in self.cache:
            keys.zero_()
            values.zero_()

    def step(self, function=None):
        return (function or self.model.step)(self.tokens, self.position, self.rope, self.cache)

    def generate(self, prompt, step):
        self.reset()
        return greedy_generate(step, prompt, NEW_TOKENS, self.position, self.tokens)


def prompt_tokens():
    return torch.randint(0, CONFIG.vocab_size, (BATCH, PROMPT), generator=torch.Generator().manual_seed(5)).cuda()


def test_loader_replaces_every_linear_and_copies_the_rest(checkpoint):
    folder, _ = checkpoint
    model, report = loaded_model(folder)
    linears = [name for name, m in model.named_modules() if isinstance(m, GLQLinear)]
    assert len(linears) == 7 * CONFIG.num_hidden_layers and all(m.planned for m in model.modules() if isinstance(m, GLQLinear))
    assert "lm_head.weight" in report.copied and "model.embed_tokens.weight" in report.copied
    assert report.missing == [] and report.unused == []
    fused, fused_report = loaded_model(folder, fused=True)
    assert fused_report.quantized["model.layers.0.self_attn.qkv_proj"] == [
        f"model.layers.0.self_attn.{role}" for role in ("q_proj", "k_proj", "v_proj")
    ]
    assert fused.model.layers[1].mlp.gate_up_proj.out_features == 2 * CONFIG.intermediate_size


def test_greedy_tokens_agree_eager_compiled_and_graph_replayed(checkpoint):
    folder, _ = checkpoint
    model, _ = loaded_model(folder)
    decoder = Decoder(model)
    prompt = prompt_tokens()
    with torch.no_grad():
        eager_tokens, eager_logits = decoder.generate(prompt, decoder.step)

        compiled = torch.compile(model.step, fullgraph=True)
        compiled_tokens, compiled_logits = decoder.generate(prompt, lambda: decoder.step(compiled))

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            decoder.step()  # warm-up before capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_logits = decoder.step()

        def replay():
            graph.replay()
            return static_logits

        graph_tokens, graph_logits = decoder.generate(prompt, replay)
    assert torch.equal(eager_tokens, graph_tokens) and torch.equal(eager_logits, graph_logits)
    # Inductor fuses and rounds the PyTorch parts (norms, rope, softmax) its own way: the tokens
    # agree, the logits within the bound that both keep against float64.
    assert torch.equal(eager_tokens, compiled_tokens)
    assert relative_l2(compiled_logits, eager_logits) < BOUND["float16"]


def float64_model(tensors):
    """The same model in float64, each quantized linear's weight the dense fp64 matrix of section 1."""
    state = {}
    quantized = {name.rsplit(".", 1)[0] for name in tensors if ".Qidxs" in name}
    for prefix in quantized:
        bpw = LAYER_BPW[int(prefix.split(".")[2])]
        in_features, out_features = role_shape(CONFIG, prefix.rsplit(".", 1)[1])
        leaves = {name[len(prefix) + 1:]: tensor.cuda() for name, tensor in tensors.items()
                  if name.rsplit(".", 1)[0] == prefix}
        shard = Shard.from_leaves(in_features, out_features, bpw, leaves)
        state[f"{prefix}.weight"] = dense_weight(shard.stages, stage_kinds(bpw), shard.su, shard.sv, shard.wscale,
                                                 shard.inv_resid_scales, in_features, out_features)
    for name, tensor in tensors.items():
        if name.rsplit(".", 1)[0] not in quantized:
            state[name] = tensor.cuda().double()
    model = LlamaForCausalLM(CONFIG, dtype=torch.float64)
    model.load_state_dict(state, strict=True, assign=True)
    return model.cuda().eval()


def test_logits_match_a_float64_evaluation(checkpoint):
    folder, tensors = checkpoint
    model, _ = loaded_model(folder)
    decoder = Decoder(model)
    with torch.no_grad():
        tokens, logits = decoder.generate(prompt_tokens(), decoder.step)
        reference = float64_model(tensors)
        position = torch.zeros((), dtype=torch.long, device="cuda")
        rope = reference.rope_tables("cuda", torch.float64)
        cache = reference.new_cache(BATCH, "cuda", torch.float64)
        expected = []
        for step in range(tokens.shape[1] - 1):  # teacher-forced with the tokens glqjit chose
            position.fill_(step)
            expected.append(reference.step(tokens[:, step], position, rope, cache))
        expected = torch.stack(expected, dim=1)
    error = relative_l2(logits, expected)
    print(f"tiny Llama logits: relative L2 error {error:.2e} against float64")
    assert error < BOUND["float16"]


def test_a_bad_checkpoint_names_the_tensor_and_leaves_the_model_unchanged(checkpoint, tmp_path):
    folder, tensors = checkpoint
    from glqjit.safetensors_io import read_header, write_safetensors
    header = read_header(os.path.join(folder, "model.safetensors"))
    kept = {name: info for name, info in header.items() if name != "model.layers.1.mlp.up_proj.SV"}
    with open(os.path.join(folder, "model.safetensors"), "rb") as file:
        data = file.read()
    write_safetensors(tmp_path / "model.safetensors",
                      {name: (info.dtype, info.shape, data[info.begin:info.end]) for name, info in kept.items()})
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    model = LlamaForCausalLM(CONFIG, dtype=torch.float16)
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.mlp\.up_proj\.SV"):
        load_glq_checkpoint(model, tmp_path)
    assert not any(isinstance(m, GLQLinear) for m in model.modules())
    assert model.lm_head.weight.is_meta
