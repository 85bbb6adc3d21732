"""glqjit.format against FORMAT.md: the codebooks' check values, test vectors and SHA-256s, the
recipes, the checkpoint tensor names, the padding and the Hadamard blocks."""

import hashlib
import random
import unittest

from glqjit import format as glq_format


def dump_sha256(lines):
    return hashlib.sha256("".join(lines).encode("ascii")).hexdigest()


class E8PTest(unittest.TestCase):
    def test_abs_rows_check_values(self):
        rows = glq_format.e8p_abs_rows()
        self.assertEqual(len(rows), 256)
        self.assertEqual(rows[0], (1, 1, 1, 1, 1, 1, 1, 1))
        self.assertEqual(rows[1], (1, 1, 1, 1, 1, 1, 1, -3))
        self.assertEqual(rows[3], (1, 1, 1, 1, 1, 1, 3, -1))
        self.assertEqual(rows[226], (5, 3, 1, 1, 1, 1, 1, -1))
        self.assertEqual(rows[255], (3, 3, 1, 1, 3, 3, 3, -1))

    def test_abs_rows_are_sorted_magnitudes_then_the_appended_rows(self):
        magnitudes = [tuple(abs(h) for h in row) for row in glq_format.e8p_abs_rows()]
        self.assertEqual(magnitudes[:227], sorted(set(magnitudes[:227])))
        self.assertEqual(magnitudes[227], (3, 1, 1, 1, 3, 3, 3, 3))  # the first of step 3's rows
        self.assertEqual(magnitudes[254], (1, 1, 3, 3, 1, 3, 3, 3))
        for row in glq_format.e8p_abs_rows():
            self.assertTrue(all(h % 2 == 1 for h in row), row)
            self.assertEqual(sum(row) // 2 % 2, 0, f"{row}: step 4 leaves an even sum in value units")

    def test_decode_test_vectors(self):
        vectors = {
            0x0000: "0.75 0.75 0.75 0.75 0.75 0.75 0.75 0.75",
            0x0001: "0.25 0.25 0.25 0.25 0.25 0.25 0.25 0.25",
            0x0003: "-0.25 0.75 -0.25 0.75 0.75 0.75 0.75 0.75",
            0x0100: "0.75 0.75 0.75 0.75 0.75 0.75 0.75 -1.25",
            0x00FF: "-0.25 -0.25 -0.25 -0.25 -0.25 -0.25 -0.25 -0.25",
            0x1234: "-0.75 -0.75 0.25 -0.75 -1.75 0.25 0.25 1.25",
            0xABCD: "1.25 0.25 0.25 1.25 -0.75 -1.75 -0.75 0.25",
            0xFFFF: "-1.25 -1.25 -0.25 -0.25 -1.25 -1.25 -1.25 0.75",
        }
        for code, text in vectors.items():
            with self.subTest(code=hex(code)):
                self.assertEqual(glq_format.e8p_decode(code), tuple(float(v) for v in text.split()))

    def test_every_code_decodes_to_a_distinct_vector_of_quarter_values(self):
        allowed = {sign * (0.25 + 0.5 * k) for sign in (1, -1) for k in range(6)}  # +-0.25 .. +-2.75
        decoded = [glq_format.e8p_decode(code) for code in range(1 << 16)]
        self.assertEqual(len(set(decoded)), 1 << 16)
        self.assertTrue(all(value in allowed for vector in decoded for value in vector))

    def test_table_dump_sha256(self):
        lines = ["0x%04x" % code + "".join(" %g" % v for v in glq_format.e8p_decode(code)) + "\n"
                 for code in range(1 << 16)]
        self.assertEqual(lines[0x1234], "0x1234 -0.75 -0.75 0.25 -0.75 -1.75 0.25 0.25 1.25\n")
        self.assertEqual(dump_sha256(lines), "da2412dae23533e449ac136929d2b955a7be7bfdadae2b86bceaeeb4b6ff9e57")

    def test_decode_rejects_what_is_no_16_bit_code(self):
        for code in (-1, 1 << 16, 1.0, True, "1"):
            with self.subTest(code=code), self.assertRaises(ValueError):
                glq_format.e8p_decode(code)


class E81BTest(unittest.TestCase):
    def test_anchors(self):
        rows = glq_format.e81b_rows()
        self.assertEqual(len(rows), 256)
        self.assertEqual(rows[0], (-1, -1, 0, 0, 0, 0, 0, 0))
        self.assertEqual(rows[1], (-1, 0, -1, 0, 0, 0, 0, 0))
        self.assertEqual(rows[56], (0,) * 8)
        self.assertEqual(rows[112], (1, 1, 0, 0, 0, 0, 0, 0))
        self.assertEqual(rows[113], (-0.5,) * 8)
        self.assertEqual(rows[240], (0.5,) * 8)
        self.assertEqual(rows[241], (2, 0, 0, 0, 0, 0, 0, 0))
        self.assertEqual(rows[255], (0, 0, 0, 0, 0, 0, -2, 0))

    def test_rows_are_distinct_lattice_points(self):
        rows = glq_format.e81b_rows()
        self.assertEqual(len(set(rows)), 256)
        self.assertTrue(all(v == int(v) for row in rows[:113] for v in row), "rows 0..112 are integral")
        self.assertTrue(all(v != int(v) for row in rows[113:241] for v in row), "rows 113..240 are half-integral")
        for row in rows[:241]:
            self.assertEqual(sum(row) % 2, 0, row)
            self.assertLessEqual(sum(v * v for v in row), 2, row)

    def test_table_dump_sha256(self):
        lines = [f"{code}" + "".join(" %g" % v for v in row) + "\n" for code, row in enumerate(glq_format.e81b_rows())]
        self.assertEqual(lines[56], "56 0 0 0 0 0 0 0 0\n")
        self.assertEqual(dump_sha256(lines), "8a8cd541983b4a64e3ced1118ddb8c5bcd734b6e499fb827f833ecab02bf1038")


class RecipeTest(unittest.TestCase):
    def test_stage_kinds_of_every_bpw(self):
        expected = {
            2: ["e8p"], 3: ["e8p", "e81b"], 4: ["e8p", "e8p"], 5: ["e8p", "e8p", "e81b"], 6: ["e8p"] * 3,
            7: ["e8p"] * 3 + ["e81b"], 8: ["e8p"] * 4,
        }
        for bpw, kinds in expected.items():
            self.assertEqual(glq_format.stage_kinds(bpw), kinds, f"bpw {bpw}")

    def test_stage_kinds_refuses_other_bpw(self):
        for bpw in (0, 1, 9, 16, -2, 3.0, True, "4", None):
            with self.subTest(bpw=bpw), self.assertRaisesRegex(ValueError, r"bpw .* is not supported.*2\.\.8"):
                glq_format.stage_kinds(bpw)


class TensorNameTest(unittest.TestCase):
    def test_stage_tensor_leaves(self):
        self.assertEqual(glq_format.stage_tensor_leaf(0, "e8p"), "Qidxs_e8p")
        self.assertEqual(glq_format.stage_tensor_leaf(1, "e8p"), "Qidxs2_e8p")
        self.assertEqual(glq_format.stage_tensor_leaf(1, "e81b"), "Qidxs2_e81b")
        self.assertEqual(glq_format.stage_tensor_leaf(2, "e81b"), "Qidxs3_e81b")
        self.assertEqual(glq_format.stage_tensor_leaf(3, "e8p"), "Qidxs4_e8p")

    def test_stage_tensor_leaf_refuses_unknown_stages_and_codebooks(self):
        for stage, kind in ((4, "e8p"), (-1, "e8p"), (1, "e8"), (1, "E8P"), (True, "e8p")):
            with self.subTest(stage=stage, kind=kind), self.assertRaises(ValueError):
                glq_format.stage_tensor_leaf(stage, kind)

    def test_scale_tensor_leaves(self):
        self.assertEqual([glq_format.scale_tensor_leaf(s) for s in (1, 2, 3)],
                         ["inv_resid_scale", "inv_resid_scale2", "inv_resid_scale3"])
        for stage in (0, 4):  # c_0 = 1 is never stored; there is no stage 4
            with self.subTest(stage=stage), self.assertRaises(ValueError):
                glq_format.scale_tensor_leaf(stage)


class PaddingTest(unittest.TestCase):
    def test_block_diagonal_padding(self):
        for features, n_pad, m_pad in ((1, 64, 16), (20, 64, 32), (100, 128, 112), (1000, 1024, 1008),
                                       (4096, 4096, 4096), (5376, 5376, 5376), (11008, 11008, 11008),
                                       (14336, 14336, 14336), (1 << 20, 1 << 20, 1 << 20)):
            self.assertEqual(glq_format.padded_in(features), n_pad, f"in {features}")
            self.assertEqual(glq_format.padded_out(features), m_pad, f"out {features}")

    def test_legacy_padding_is_the_next_power_of_two_of_whole_tiles(self):
        for features, n_pad, m_pad in ((1, 64, 16), (17, 64, 32), (100, 128, 128), (1000, 1024, 1024),
                                       (4096, 4096, 4096), (5376, 8192, 8192), (11008, 16384, 16384)):
            self.assertEqual(glq_format.padded_in(features, block_diagonal=False), n_pad, f"in {features}")
            self.assertEqual(glq_format.padded_out(features, block_diagonal=False), m_pad, f"out {features}")

    def test_padding_refuses_absurd_features(self):
        for features in (0, -64, (1 << 20) + 1, 64.0, True):
            for pad in (glq_format.padded_in, glq_format.padded_out):
                with self.subTest(features=features, pad=pad.__name__), \
                        self.assertRaisesRegex(ValueError, r"features .* is not supported"):
                    pad(features)

    def test_hadamard_blocks_examples(self):
        self.assertEqual(glq_format.hadamard_blocks(11008), [8192, 2048, 512, 256])
        self.assertEqual(glq_format.hadamard_blocks(5376), [4096, 1024, 256])
        self.assertEqual(glq_format.hadamard_blocks(4096), [4096])
        self.assertEqual(glq_format.hadamard_blocks(1), [1])
        self.assertEqual(glq_format.hadamard_blocks(16384, block_diagonal=False), [16384])

    def test_hadamard_blocks_are_descending_powers_of_two_that_sum_to_the_size(self):
        rng = random.Random(5)
        for d in [rng.randrange(1, 1 << 21) for _ in range(200)]:
            blocks = glq_format.hadamard_blocks(d)
            self.assertEqual(sum(blocks), d)
            self.assertEqual(blocks, sorted(set(blocks), reverse=True))
            self.assertTrue(all(b & (b - 1) == 0 for b in blocks), blocks)

    def test_hadamard_blocks_refuses_sizes_without_blocks(self):
        for d, block_diagonal in ((0, True), (-4, True), (2.0, True), (11008, False), (0, False)):
            with self.subTest(d=d, block_diagonal=block_diagonal), self.assertRaises(ValueError):
                glq_format.hadamard_blocks(d, block_diagonal)


if __name__ == "__main__":
    unittest.main()
