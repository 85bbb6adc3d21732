"""torch.ops.glqjit.linear and linear_group through GLQLinear, against the fp64 reference."""

import pytest
import torch

from conftest import BOUND, relative_l2
from glqjit import GLQLinear
from random_layers import random_shard, reference


def poisoned_output_memory(rows, features, dtype):
    """Fills freed memory of the output's size with NaN, so that the caching allocator hands the
    operator's output that memory: rows it leaves unwritten then fail the comparison."""
    poison = torch.full((rows, features), float("nan"), dtype=dtype, device="cuda")
    del poison


@pytest.mark.parametrize("bpw", [2, 3, 4])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_linear_matches_the_fp64_reference(bpw, dtype):
    generator = torch.Generator().manual_seed(1000 + bpw)
    # 1000 x 600 pads both sides (m_pad 1008, n_pad 640: Hadamard blocks 512 + 128).
    shard, weight = random_shard(600, 1000, bpw, generator, bias_dtype=dtype)
    layer = GLQLinear(shard, dtype=dtype, max_batch=40).plan()
    for batch in (1, 7, 40):
        x = torch.randn(batch, 600, generator=generator).to("cuda", dtype)
        poisoned_output_memory(batch, 1000, dtype)
        y = layer(x)
        assert y.shape == (batch, 1000) and y.dtype == dtype
        error = relative_l2(y, reference(x, weight, shard.bias))
        assert error < BOUND[str(dtype).split(".")[1]], f"batch {batch}: relative L2 error {error}"


def test_leading_dimensions_are_kept_and_a_sliced_input_is_read_right():
    generator = torch.Generator().manual_seed(7)
    shard, weight = random_shard(512, 256, 2, generator)
    layer = GLQLinear(shard, max_batch=16).plan()
    wide = torch.randn(2, 3, 520, generator=generator).to("cuda", torch.float16)
    x = wide[..., 3:515]  # not contiguous, not 16-byte aligned
    y = layer(x)
    assert y.shape == (2, 3, 256)
    assert relative_l2(y.reshape(6, 256), reference(x.reshape(6, 512), weight)) < BOUND["float16"]
    assert layer(x[:0]).shape == (0, 3, 256)


def test_a_group_equals_its_shards_side_by_side():
    generator = torch.Generator().manual_seed(11)
    parts = [random_shard(1024, out, bpw, generator) for out, bpw in ((1024, 2), (256, 3), (256, 4))]
    group = GLQLinear([shard for shard, _ in parts], max_batch=8).plan()
    assert group.out_features == 1536
    for batch in (1, 8):
        x = torch.randn(batch, 1024, generator=generator).to("cuda", torch.float16)
        poisoned_output_memory(batch, 1536, torch.float16)
        y = group(x)
        expected = torch.cat([reference(x, weight) for _, weight in parts], dim=1)
        assert relative_l2(y, expected) < BOUND["float16"], f"batch {batch}"


def planned_layer(seed, in_features, out_features, bpw, batch):
    """A planned single GLQLinear of random codes, an fp16 input of `batch` rows, the dense weight."""
    generator = torch.Generator().manual_seed(seed)
    shard, weight = random_shard(in_features, out_features, bpw, generator)
    x = torch.randn(batch, in_features, generator=generator).to("cuda", torch.float16)
    return GLQLinear(shard, max_batch=batch).plan(), x, weight


def test_outputs_are_bitwise_repeatable():
    layer, x, _ = planned_layer(3, 4096, 4096, 2, batch=32)
    first = layer(x)
    for _ in range(3):
        assert torch.equal(layer(x), first)


def test_moving_the_module_replans_and_stale_weights_are_refused():
    layer, x, weight = planned_layer(5, 256, 128, 3, batch=4)
    before = layer(x)
    layer.cpu()
    assert not layer.planned
    with pytest.raises(RuntimeError, match="no plan"):
        layer(x)
    layer.cuda()
    assert layer.planned and torch.equal(layer(x), before)
    layer.to(torch.bfloat16)
    assert layer.dtype == torch.bfloat16 and layer.SU.dtype == torch.float16
    assert relative_l2(layer(x.bfloat16()), reference(x, weight)) < BOUND["bfloat16"]
    weights = [getattr(layer, name) for name in layer._weight_names]
    weights[0] = weights[0].clone()
    with pytest.raises(RuntimeError, match="not the one it was planned with"):
        torch.ops.glqjit.linear(x.bfloat16(), weights, layer._plan, layer.out_features)


def test_bad_calls_say_what_to_do():
    layer, x, _ = planned_layer(9, 256, 128, 2, batch=4)
    with pytest.raises(RuntimeError, match="planned for at most 4.*larger max_batch"):
        layer(torch.cat([x, x[:1]]))
    with pytest.raises(RuntimeError, match="planned for Half"):
        layer(x[:4].float())
    with pytest.raises(RuntimeError, match="reads 256 features"):
        layer(x[:4, :128])
    with pytest.raises(RuntimeError, match="on cpu"):
        layer(x[:4].cpu())
    with pytest.raises(RuntimeError, match="is one linear; call torch.ops.glqjit.linear"):
        torch.ops.glqjit.linear_group(x[:4], [getattr(layer, n) for n in layer._weight_names], layer._plan, 128)
    cpu_shard, _ = random_shard(256, 128, 2, torch.Generator().manual_seed(10), device="cpu")
    with pytest.raises(RuntimeError, match="move the module to a CUDA device"):
        GLQLinear(cpu_shard).plan()
    with pytest.raises(ValueError, match="2 bpw, which has 1 stages"):
        GLQLinear(type(cpu_shard)(**{**cpu_shard.__dict__, "stages": cpu_shard.stages * 2}))
