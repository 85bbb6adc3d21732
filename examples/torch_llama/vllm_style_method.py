"""How a vLLM quantization method would use glqjit, runnable without vLLM (docs/serving.md).

vLLM's linear layers ask their quantization method for three things; glqjit fits them so:
  create_weights   register empty tensors of FORMAT.md section 7's shapes, one set per shard
                   (q/k/v or gate/up of a fused layer), for the weight loader to fill;
  process_weights_after_loading
                   once every shard is loaded (and on the GPU): build a GLQLinear over them and
                   plan it -- the only step that loads or compiles kernels;
  apply            run the plan: torch.ops.glqjit.linear(_group) on the current stream. Nothing is
                   compiled, allocated by glqjit or synchronized, so vLLM may capture it in the
                   CUDA graphs it records per batch size (max_batch >= the largest of them).

    python3 vllm_style_method.py          # on a GPU machine with PyTorch and glqjit._C built
"""

import tempfile

import torch

from glqjit_path import add_glqjit_to_path

add_glqjit_to_path()
from glqjit import GLQLinear, Shard  # noqa: E402
from glqjit.checkpoint import find_linear, read_glq_config, read_tensor_table  # noqa: E402
from glqjit.format import padded_in, padded_out, scale_tensor_leaf, stage_kinds, stage_tensor_leaf  # noqa: E402
from glqjit.safetensors_io import read_bytes  # noqa: E402
from llama import LlamaConfig  # noqa: E402
from make_checkpoint import write_random_checkpoint  # noqa: E402

CAPTURED_BATCH_SIZES = (1, 2, 4, 8)  # what a server would capture graphs for


class GLQLinearMethod:
    """The three calls of a vLLM LinearMethodBase, for a layer of one or several GLQ shards."""

    def __init__(self, bpw: int, max_batch: int):
        self.bpw = bpw
        self.max_batch = max_batch

    def create_weights(self, layer: torch.nn.Module, in_features: int, shard_out_features, dtype, device):
        layer.glq_shards = []
        for index, out_features in enumerate(shard_out_features):
            m_pad, n_pad = padded_out(out_features), padded_in(in_features)
            tensors = {}
            for stage, kind in enumerate(stage_kinds(self.bpw)):
                shape = (m_pad // 16, n_pad // 64, 8, 4) if kind == "e8p" else (m_pad, n_pad // 64)
                tensors[stage_tensor_leaf(stage, kind)] = torch.empty(shape, dtype=torch.int64, device=device)
                if stage > 0:
                    tensors[scale_tensor_leaf(stage)] = torch.empty((), dtype=torch.float32)
            tensors["SU"] = torch.empty(m_pad, dtype=torch.float16, device=device)
            tensors["SV"] = torch.empty(n_pad, dtype=torch.float16, device=device)
            tensors["Wscale"] = torch.empty((), dtype=torch.float32)
            for leaf, tensor in tensors.items():
                layer.register_buffer(f"shard{index}_{leaf}", tensor)
            layer.glq_shards.append((in_features, out_features, list(tensors)))
        layer.activation_dtype = dtype

    def process_weights_after_loading(self, layer: torch.nn.Module):
        shards = [
            Shard.from_leaves(in_features, out_features, self.bpw,
                              {leaf: getattr(layer, f"shard{index}_{leaf}") for leaf in leaves})
            for index, (in_features, out_features, leaves) in enumerate(layer.glq_shards)
        ]
        layer.glq = GLQLinear(shards, dtype=layer.activation_dtype, max_batch=self.max_batch).plan()

    def apply(self, layer: torch.nn.Module, x: torch.Tensor, bias=None) -> torch.Tensor:
        y = layer.glq(x)
        return y if bias is None else y + bias


def load_shard(layer, index, checkpoint_folder, prefix, in_features, out_features):
    """What vLLM's weight loader does for one shard: copy its checkpoint tensors into the layer's."""
    linear = find_linear(read_tensor_table(checkpoint_folder), prefix, in_features, out_features,
                         read_glq_config(checkpoint_folder).block_diagonal)
    infos = {info.name.rsplit(".", 1)[1]: info for info in (*linear.stages, *linear.inv_resid_scales,
                                                             linear.su, linear.sv, linear.wscale)}
    for leaf, info in infos.items():
        target = getattr(layer, f"shard{index}_{leaf}")
        source = torch.frombuffer(bytearray(read_bytes(info)), dtype=target.dtype).reshape(target.shape)
        target.copy_(source)


def main():
    config = LlamaConfig(vocab_size=256, hidden_size=1024, intermediate_size=2816, num_hidden_layers=1,
                         num_attention_heads=8, num_key_value_heads=2)
    with tempfile.TemporaryDirectory() as folder:
        write_random_checkpoint(folder, config, lambda layer, role: 2)
        method = GLQLinearMethod(bpw=2, max_batch=max(CAPTURED_BATCH_SIZES))
        qkv = torch.nn.Module()
        shard_outs = (1024, 256, 256)
        method.create_weights(qkv, 1024, shard_outs, torch.float16, "cuda")
        for index, role in enumerate(("q_proj", "k_proj", "v_proj")):
            load_shard(qkv, index, folder, f"model.layers.0.self_attn.{role}", 1024, shard_outs[index])
        method.process_weights_after_loading(qkv)

    graphs = {}
    for batch in CAPTURED_BATCH_SIZES:  # vLLM's capture loop: warm up, then capture each size
        x = torch.randn(batch, 1024, device="cuda", dtype=torch.float16)
        method.apply(qkv, x)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y = method.apply(qkv, x)
        graphs[batch] = (graph, x, y)
    for batch, (graph, x, y) in graphs.items():
        x.copy_(torch.randn(batch, 1024, device="cuda", dtype=torch.float16))
        graph.replay()
        eager = method.apply(qkv, x)
        torch.cuda.synchronize()
        print(f"batch {batch}: graph replay {'==' if torch.equal(y, eager) else '!='} eager, y {tuple(y.shape)}")
        assert torch.equal(y, eager)


if __name__ == "__main__":
    main()
