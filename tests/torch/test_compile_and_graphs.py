"""GLQLinear under torch.compile(fullgraph=True) and CUDA graph capture: the same bits as eager."""

import torch

from glqjit import GLQLinear
from random_layers import random_shard


class TwoLayerBlock(torch.nn.Module):
    """A fused q/k/v-style group, an activation, and a single linear: the shapes of a decoder."""

    def __init__(self, generator):
        super().__init__()
        self.fused = GLQLinear([random_shard(512, out, 2, generator)[0] for out in (512, 128, 128)], max_batch=16)
        self.down = GLQLinear(random_shard(768, 512, 3, generator)[0], max_batch=16)

    def forward(self, x):
        return self.down(torch.nn.functional.silu(self.fused(x))) + x


def planned_block(seed):
    block = TwoLayerBlock(torch.Generator().manual_seed(seed))
    for module in block.modules():
        if isinstance(module, GLQLinear):
            module.plan()
    return block


def test_compile_fullgraph_traces_the_operators_and_matches_eager():
    block = planned_block(21)
    compiled = torch.compile(block, fullgraph=True)
    for batch in (1, 16):
        x = torch.randn(batch, 512, device="cuda", dtype=torch.float16)
        assert torch.allclose(compiled(x), block(x), rtol=0, atol=1e-2)
        eager_linear = block.fused(x)
        compiled_linear = torch.compile(block.fused, fullgraph=True)(x)
        assert torch.equal(compiled_linear, eager_linear)


def test_cuda_graph_replay_is_bitwise_equal_to_eager():
    block = planned_block(22)
    static_x = torch.randn(8, 512, device="cuda", dtype=torch.float16)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        block(static_x)  # warm-up on a side stream, as torch.cuda.graphs asks
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = block(static_x)
    for seed in range(3):
        static_x.copy_(torch.randn(8, 512, generator=torch.Generator().manual_seed(seed)).half())
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(static_y, block(static_x))
