"""Tokens per second of a Llama-style stack decoding one token per step: its linears through
glqjit (GLQLinear, fused q/k/v and gate/up as groups), everything else in PyTorch, against the
same stack with fp16 nn.Linear (cuBLAS), at each --batch, three ways: eager; the eager step
captured in a CUDA graph and replayed; the step compiled by torch.compile (which fuses the
PyTorch parts: norms, rope, softmax) and then captured and replayed, as a server would run it.

Weights are random (codes drawn on the GPU, no checkpoint is written), so the numbers are
speed only. Writes a Markdown table to stdout and, with --json, the rows.

    python3 decode_speed.py --model llama-3-8b --bpw 2 --batch 1,16 --json out.json
"""

import argparse
import json
import time

import torch

from glqjit_path import add_glqjit_to_path

add_glqjit_to_path()
from glqjit import GLQLinear, Shard  # noqa: E402
from glqjit.loader import FUSED_SHARDS  # noqa: E402
from llama import LlamaConfig, LlamaForCausalLM  # noqa: E402
from make_checkpoint import random_glq_linear, role_shape  # noqa: E402

MODELS = {
    "tiny": LlamaConfig(vocab_size=1024, hidden_size=512, intermediate_size=1536, num_hidden_layers=2,
                        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256),
    "llama-3-8b": LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                              num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=256),
}


def shard_shapes(config, name):
    """(in_features, [out_features per shard]) of a fused model's linear, by its name."""
    shards = FUSED_SHARDS.get(name.rsplit(".", 1)[1], (name.rsplit(".", 1)[1],))
    return role_shape(config, shards[0])[0], [role_shape(config, shard)[1] for shard in shards]


def random_shard(in_features, out_features, bpw, generator):
    return Shard.from_leaves(in_features, out_features, bpw, random_glq_linear(in_features, out_features, bpw, generator))


def build(config, bpw, max_batch):
    """The fused model on the GPU: GLQLinears where bpw is given, else fp16 nn.Linear; random values."""
    model = LlamaForCausalLM(config, dtype=torch.float16, fused=True)
    generator = torch.Generator(device="cuda").manual_seed(0)
    if bpw:
        for name, module in list(model.named_modules()):
            if isinstance(module, torch.nn.Linear) and name != "lm_head":
                in_features, outs = shard_shapes(config, name)
                layer = GLQLinear([random_shard(in_features, out, bpw, generator) for out in outs], max_batch=max_batch)
                owner, _, leaf = name.rpartition(".")
                setattr(model.get_submodule(owner), leaf, layer)
    for module in model.modules():  # the rest starts on the meta device (or the CPU): random values on the GPU
        for name, parameter in module.named_parameters(recurse=False):
            value = torch.empty(parameter.shape, dtype=parameter.dtype, device="cuda")
            torch.nn.init.normal_(value, std=1.0 if "norm" in name else value.shape[-1] ** -0.5, generator=generator)
            setattr(module, name, torch.nn.Parameter(value, requires_grad=False))
    for module in model.modules():
        if isinstance(module, GLQLinear):
            module.plan()
    return model.eval()


MODES = ("eager", "graph", "compiled+graph")


def tokens_per_second(model, batch, steps, mode):
    config = model.config
    tokens = torch.randint(0, config.vocab_size, (batch,), device="cuda")
    position = torch.zeros((), dtype=torch.long, device="cuda")
    rope = model.rope_tables("cuda", torch.float32)
    cache = model.new_cache(batch, "cuda", torch.float16)
    function = torch.compile(model.step, fullgraph=True) if mode == "compiled+graph" else model.step

    def step():
        return function(tokens, position, rope, cache)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    if mode != "eager":
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        step = graph.replay
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for index in range(steps):
        position.fill_(index)
        step()
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1e3
    return batch * steps / seconds, seconds / steps * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--bpw", type=int, default=2, help="bits per weight of the glqjit stack (default 2)")
    parser.add_argument("--batch", default="1,16", help="comma-separated batch sizes (default 1,16)")
    parser.add_argument("--steps", type=int, default=128, help="decode steps timed per row (default 128)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    config = MODELS[args.model]
    batches = [int(b) for b in args.batch.split(",")]
    if args.steps > config.max_position_embeddings:
        parser.error(f"--steps {args.steps} exceeds the cache of {config.max_position_embeddings} positions")
    rows = []
    print("| model | weights | batch | mode | tokens/s | ms/step |\n|---|---|---:|---|---:|---:|")
    with torch.no_grad():
        for label, bpw in ((f"glqjit {args.bpw} bpw", args.bpw), ("fp16 cuBLAS", 0)):
            started = time.perf_counter()
            model = build(config, bpw, max(batches))
            built = time.perf_counter() - started
            for batch in batches:
                for mode in MODES:
                    rate, ms = tokens_per_second(model, batch, args.steps, mode)
                    rows.append(dict(model=args.model, weights=label, batch=batch, mode=mode, tokens_per_second=rate,
                                     ms_per_step=ms, build_seconds=built))
                    print(f"| {args.model} | {label} | {batch} | {mode} | {rate:.1f} | {ms:.3f} |", flush=True)
            del model
            torch.cuda.empty_cache()
    header = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, steps=args.steps,
                  layers=config.num_hidden_layers)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(dict(header=header, rows=rows), file, indent=2)


if __name__ == "__main__":
    main()
