"""glqjit.reference (needs torch): the packed layouts against FORMAT.md section 6 bit by bit, the
decodes against the test vectors, the Hadamard matrix, and dense_weight against a slow evaluation
of section 1 written with explicit loops over glqjit.format's codebooks."""

import math
import random
import unittest

from glqjit import format as glq_format

try:
    import torch
except ImportError:
    torch = None
else:
    from glqjit import reference

NEEDS_TORCH = unittest.skipUnless(
    torch is not None, "torch is not installed: the fp64 reference tests need it; run them with a Python that has it")


def as_int64(word):
    """A 64-bit word as the int64 a checkpoint stores (two's complement)."""
    return word - (1 << 64) if word >> 63 else word


def literal_e8p_words(idx16):
    """FORMAT.md section 6, one word at a time: word [R][C][r][c] packs code_i = idx16[16R + 2r + p]
    [8C + 2c + q] (p = i & 1, q = i >> 1) as byte i of the low half and bits 4j + i of the high half."""
    rows, groups = len(idx16), len(idx16[0])
    words = [[[[0] * 4 for _ in range(8)] for _ in range(groups // 8)] for _ in range(rows // 16)]
    for R in range(rows // 16):
        for C in range(groups // 8):
            for r in range(8):
                for c in range(4):
                    word = 0
                    for i in range(4):
                        code = idx16[16 * R + 2 * r + (i & 1)][8 * C + 2 * c + (i >> 1)]
                        word |= (code >> 8) << (8 * i)
                        for j in range(8):
                            word |= (code >> j & 1) << (32 + 4 * j + i)
                    words[R][C][r][c] = as_int64(word)
    return words


def literal_e81b_words(idx8):
    """FORMAT.md section 6: byte i of word [row][w] is idx8[row][8w + i]."""
    return [[as_int64(sum(row[8 * w + i] << (8 * i) for i in range(8))) for w in range(len(row) // 8)]
            for row in idx8]


def random_codes(rng, rows, groups, bits):
    return [[rng.getrandbits(bits) for _ in range(groups)] for _ in range(rows)]


def slow_hadamard_entry(i, j, blocks):
    """H[i][j] of FORMAT.md section 5: (-1)^popcount(i & j) / sqrt(b) inside a block, else 0."""
    start = 0
    for block in blocks:
        if start <= i < start + block:
            if not start <= j < start + block:
                return 0.0
            return (-1) ** bin((i - start) & (j - start)).count("1") / math.sqrt(block)
        start += block
    raise AssertionError("index beyond the blocks")


def slow_dense_weight(codes, kinds, su, sv, wscale, scales, in_features, out_features, m_blocks, n_blocks):
    """diag(SU) H_m (Wscale * sum_s c_s D_s) H_n diag(SV), element by element; zero Hadamard
    entries are skipped, which keeps it to a second."""
    m_pad, n_pad = sum(m_blocks), sum(n_blocks)
    w_tilde = [[0.0] * n_pad for _ in range(m_pad)]
    for stage_codes, kind, scale in zip(codes, kinds, [1.0, *scales]):
        for row in range(m_pad):
            for group in range(n_pad // 8):
                code = stage_codes[row][group]
                values = glq_format.e8p_decode(code) if kind == "e8p" else glq_format.e81b_rows()[code]
                for k in range(8):
                    w_tilde[row][8 * group + k] += wscale * scale * values[k]

    def block_of(index, blocks):
        start = 0
        for block in blocks:
            if index < start + block:
                return range(start, start + block)
            start += block

    left = [[sum(slow_hadamard_entry(i, k, m_blocks) * w_tilde[k][l] for k in block_of(i, m_blocks))
             for l in range(n_pad)] for i in range(out_features)]
    return [[su[i] * sv[j] * sum(left[i][l] * slow_hadamard_entry(l, j, n_blocks) for l in block_of(j, n_blocks))
             for j in range(in_features)] for i in range(out_features)]


@NEEDS_TORCH
class PackingTest(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(self.id())

    def test_pack_e8p_is_section_6_bit_by_bit(self):
        codes = random_codes(self.rng, 32, 16, 16)  # m_pad 32 x n_pad 128
        expected = torch.tensor(literal_e8p_words(codes), dtype=torch.int64)
        packed = reference.pack_e8p(torch.tensor(codes, dtype=torch.int64))
        self.assertEqual(tuple(packed.shape), (2, 2, 8, 4))
        self.assertTrue(torch.equal(packed, expected))
        self.assertTrue(torch.equal(reference.unpack_e8p(expected), torch.tensor(codes, dtype=torch.int64)))

    def test_e8p_round_trips(self):
        codes = torch.tensor(random_codes(self.rng, 48, 24, 16), dtype=torch.int64)
        self.assertTrue(torch.equal(reference.unpack_e8p(reference.pack_e8p(codes)), codes))
        # Every 64-bit word is four codes, so unpacking any words and packing them back is exact.
        words = torch.tensor([as_int64(self.rng.getrandbits(64)) for _ in range(3 * 2 * 8 * 4)]).reshape(3, 2, 8, 4)
        self.assertTrue(torch.equal(reference.pack_e8p(reference.unpack_e8p(words)), words))

    def test_pack_e81b_is_section_6_byte_by_byte(self):
        codes = random_codes(self.rng, 16, 24, 8)  # m_pad 16 x n_pad 192
        expected = torch.tensor(literal_e81b_words(codes), dtype=torch.int64)
        packed = reference.pack_e81b(torch.tensor(codes, dtype=torch.int64))
        self.assertEqual(tuple(packed.shape), (16, 3))
        self.assertTrue(torch.equal(packed, expected))
        self.assertTrue(torch.equal(reference.unpack_e81b(expected), torch.tensor(codes, dtype=torch.int64)))
        words = torch.tensor([as_int64(self.rng.getrandbits(64)) for _ in range(16 * 3)]).reshape(16, 3)
        self.assertTrue(torch.equal(reference.pack_e81b(reference.unpack_e81b(words)), words))

    def test_packing_refuses_what_is_no_code_table(self):
        with self.assertRaises(ValueError):
            reference.pack_e8p(torch.full((16, 8), 1 << 16, dtype=torch.int64))
        with self.assertRaises(ValueError):
            reference.pack_e8p(torch.zeros((8, 8), dtype=torch.int64))  # not whole 16-row tiles
        with self.assertRaises(ValueError):
            reference.pack_e81b(torch.full((16, 8), 256, dtype=torch.int64))
        with self.assertRaises(ValueError):
            reference.unpack_e8p(torch.zeros((1, 1, 8, 4), dtype=torch.int32))
        with self.assertRaises(ValueError):
            reference.unpack_e8p(torch.zeros((1, 1, 4, 8), dtype=torch.int64))


@NEEDS_TORCH
class DecodeTest(unittest.TestCase):
    def test_decode_e8p_test_vectors_in_place(self):
        vectors = {
            0x0000: "0.75 0.75 0.75 0.75 0.75 0.75 0.75 0.75",
            0x0003: "-0.25 0.75 -0.25 0.75 0.75 0.75 0.75 0.75",
            0x0100: "0.75 0.75 0.75 0.75 0.75 0.75 0.75 -1.25",
            0x00FF: "-0.25 -0.25 -0.25 -0.25 -0.25 -0.25 -0.25 -0.25",
            0x1234: "-0.75 -0.75 0.25 -0.75 -1.75 0.25 0.25 1.25",
            0xABCD: "1.25 0.25 0.25 1.25 -0.75 -1.75 -0.75 0.25",
        }
        codes = torch.tensor(list(vectors), dtype=torch.int64).reshape(2, 3)
        decoded = reference.decode_e8p(codes)
        self.assertEqual((decoded.dtype, tuple(decoded.shape)), (torch.float64, (2, 24)))
        for index, text in enumerate(vectors.values()):
            row, group = divmod(index, 3)  # code [row][g] gives W~[row][8g .. 8g+7]
            expected = torch.tensor([float(v) for v in text.split()], dtype=torch.float64)
            self.assertTrue(torch.equal(decoded[row, 8 * group:8 * group + 8], expected), hex(list(vectors)[index]))

    def test_decode_e81b_anchors_in_place(self):
        decoded = reference.decode_e81b(torch.tensor([[0, 56], [241, 255]], dtype=torch.int64))
        self.assertEqual(decoded[0, :8].tolist(), [-1, -1, 0, 0, 0, 0, 0, 0])
        self.assertEqual(decoded[0, 8:].tolist(), [0] * 8)
        self.assertEqual(decoded[1, :8].tolist(), [2, 0, 0, 0, 0, 0, 0, 0])
        self.assertEqual(decoded[1, 8:].tolist(), [0, 0, 0, 0, 0, 0, -2, 0])

    def test_decode_refuses_codes_out_of_range(self):
        with self.assertRaises(ValueError):
            reference.decode_e8p(torch.tensor([[-1]], dtype=torch.int64))
        with self.assertRaises(ValueError):
            reference.decode_e81b(torch.tensor([[256]], dtype=torch.int64))


@NEEDS_TORCH
class HadamardTest(unittest.TestCase):
    def test_orthogonal_and_symmetric(self):
        for d in (1, 2, 48, 64, 448, 1000):
            with self.subTest(d=d):
                h = reference.hadamard(d)
                self.assertEqual((h.dtype, tuple(h.shape)), (torch.float64, (d, d)))
                self.assertTrue(torch.equal(h, h.T))
                self.assertTrue(torch.allclose(h @ h, torch.eye(d, dtype=torch.float64), atol=1e-12))

    def test_entries_are_block_diagonal_sylvester(self):
        h = reference.hadamard(48)  # blocks [32, 16]
        expected = [[slow_hadamard_entry(i, j, [32, 16]) for j in range(48)] for i in range(48)]
        self.assertTrue(torch.allclose(h, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-15))
        self.assertEqual(h[0, 32].item(), 0.0)
        self.assertEqual(h[33, 35].item(), -0.25)  # popcount(1 & 3) = 1, scaled 1/sqrt(16)

    def test_legacy_is_one_block(self):
        self.assertTrue(torch.equal(reference.hadamard(64, block_diagonal=False), reference.hadamard(64)))
        self.assertNotEqual(reference.hadamard(256, block_diagonal=False)[0, 200].item(), 0.0)
        with self.assertRaises(ValueError):
            reference.hadamard(48, block_diagonal=False)


@NEEDS_TORCH
class DenseWeightTest(unittest.TestCase):
    def layer(self, seed):
        """A 3 bpw layer of 150 -> 40 (in -> out): m_pad 48 = [32, 16], n_pad 192 = [128, 64]."""
        rng = random.Random(seed)
        codes = [random_codes(rng, 48, 24, 16), random_codes(rng, 48, 24, 8)]
        stages = [torch.tensor(literal_e8p_words(codes[0]), dtype=torch.int64),
                  torch.tensor(literal_e81b_words(codes[1]), dtype=torch.int64)]
        su = [rng.choice((-1.0, 1.0)) for _ in range(48)]
        sv = [rng.choice((-1.0, 1.0)) for _ in range(192)]
        return codes, stages, su, sv

    def test_equals_a_slow_evaluation_of_section_1(self):
        codes, stages, su, sv = self.layer(3)
        wscale, scales = 0.7, [1 / 2.04]
        dense = reference.dense_weight(stages, ["e8p", "e81b"], torch.tensor(su, dtype=torch.float16),
                                       torch.tensor(sv, dtype=torch.float16), wscale, scales, 150, 40)
        self.assertEqual((dense.dtype, tuple(dense.shape)), (torch.float64, (40, 150)))
        expected = slow_dense_weight(codes, ["e8p", "e81b"], su, sv, wscale, scales, 150, 40, [32, 16], [128, 64])
        self.assertTrue(torch.allclose(dense, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12))

    def test_scales_may_be_one_element_tensors(self):
        _, stages, su, sv = self.layer(4)
        su, sv = torch.tensor(su, dtype=torch.float16), torch.tensor(sv, dtype=torch.float16)
        as_floats = reference.dense_weight(stages, ["e8p", "e81b"], su, sv, 0.5, [0.25], 150, 40)
        as_tensors = reference.dense_weight(stages, ["e8p", "e81b"], su, sv, torch.tensor([0.5]), [torch.tensor(0.25)],
                                            150, 40)
        self.assertTrue(torch.equal(as_floats, as_tensors))

    def test_refuses_stages_that_do_not_fit(self):
        _, stages, su, sv = self.layer(5)
        su, sv = torch.tensor(su, dtype=torch.float16), torch.tensor(sv, dtype=torch.float16)
        with self.assertRaisesRegex(ValueError, "inverse residual scales"):
            reference.dense_weight(stages, ["e8p", "e81b"], su, sv, 1.0, [], 150, 40)
        with self.assertRaisesRegex(ValueError, "pads to m_pad 64 x n_pad 192"):
            reference.dense_weight(stages, ["e8p", "e81b"], su, sv, 1.0, [0.5], 150, 60)
        with self.assertRaisesRegex(ValueError, "SU of shape"):
            reference.dense_weight(stages, ["e8p", "e81b"], sv, sv, 1.0, [0.5], 150, 40)

    @unittest.skipUnless(torch is not None and torch.cuda.is_available(), "no CUDA device: the CPU result stands alone")
    def test_the_device_computes_what_the_cpu_computes(self):
        _, stages, su, sv = self.layer(6)
        su, sv = torch.tensor(su, dtype=torch.float16), torch.tensor(sv, dtype=torch.float16)
        on_cpu = reference.dense_weight(stages, ["e8p", "e81b"], su, sv, 0.5, [0.25], 150, 40)
        on_gpu = reference.dense_weight([s.cuda() for s in stages], ["e8p", "e81b"], su.cuda(), sv.cuda(), 0.5, [0.25],
                                        150, 40)
        self.assertEqual(on_gpu.device.type, "cuda")
        self.assertTrue(torch.allclose(on_gpu.cpu(), on_cpu, rtol=0, atol=1e-12))


if __name__ == "__main__":
    unittest.main()
