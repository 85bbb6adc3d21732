"""glqjit.checkpoint on checkpoint folders the tests write: config.json and the tensor table read
the way tuner/checkpoint.cpp reads them, find_linear's fields for good tensor sets, and a
CheckpointError naming the tensor and the file (or the config) for each bad one."""

import json
import os
import random
import tempfile
import unittest

from checkpoint_fixture import (glq_linear, glq_quantization, padded_sizes, random_tensor, scalar_f32,
                                write_checkpoint, write_config, write_index)
from glqjit.checkpoint import (CheckpointError, find_linear, quantized_prefixes, read_glq_config,
                               read_tensor_table)
from glqjit.safetensors_io import write_safetensors

DOWN = "model.layers.0.mlp.down_proj"


class CheckpointCase(unittest.TestCase):
    def setUp(self):
        temporary = tempfile.TemporaryDirectory()
        self.addCleanup(temporary.cleanup)
        self.folder = temporary.name
        self.rng = random.Random(self.id())

    def path(self, name):
        return os.path.join(self.folder, name)

    def assertRefused(self, call, *fragments):
        with self.assertRaises(CheckpointError) as caught:
            call()
        message = str(caught.exception)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message


class ReadGlqConfigTest(CheckpointCase):
    def test_a_glq_config(self):
        write_config(self.folder, glq_quantization(layer_bpw={DOWN: 3, "model.layers.0.self_attn.q_proj": 2}))
        config = read_glq_config(self.folder)
        self.assertEqual(config.path, self.path("config.json"))
        self.assertEqual(config.codebook, "e8p")
        self.assertTrue(config.block_diagonal, "block_diagonal defaults to true")
        self.assertEqual(config.layer_bpw, {DOWN: 3, "model.layers.0.self_attn.q_proj": 2})

    def test_legacy_and_absent_keys(self):
        write_config(self.folder, glq_quantization(block_diagonal=False))
        config = read_glq_config(self.folder)
        self.assertFalse(config.block_diagonal)
        self.assertIsNone(config.layer_bpw)

    def test_missing_folder_and_config(self):
        absent = self.path("absent")
        self.assertRefused(lambda: read_glq_config(absent), f"checkpoint {absent}", "no such folder")
        self.assertRefused(lambda: read_glq_config(self.folder), f"checkpoint {self.folder}", "has no config.json")
        write_config(self.folder, glq_quantization())
        self.assertRefused(lambda: read_glq_config(self.path("config.json")), "is a file, not a folder")

    def test_config_not_json(self):
        for text in ("{", "[1]", "[" * 100000 + "]" * 100000):
            with self.subTest(text=text):
                with open(self.path("config.json"), "w") as file:
                    file.write(text)
                self.assertRefused(lambda: read_glq_config(self.folder), f"model config {self.path('config.json')}")

    def test_foreign_or_mistyped_quantization(self):
        cases = {
            "no quantization_config": (None, "has no 'quantization_config.quant_method'"),
            "no quant_method": (glq_quantization(quant_method=None), "has no 'quantization_config.quant_method'"),
            "another quant_method": (glq_quantization(quant_method="gptq"), "quant_method' \"gptq\""),
            "another codebook": (glq_quantization(codebook="e81b"), "'quantization_config.codebook' \"e81b\""),
            "no codebook": (glq_quantization(codebook=None), "'quantization_config.codebook' \"\""),
            "quant_method not text": (glq_quantization(quant_method=7), "'quantization_config.quant_method' is 7"),
            "block_diagonal not a flag": (glq_quantization(block_diagonal="yes"), "not true or false"),
            "layer_bpw not an object": (glq_quantization(layer_bpw=[2]), "'quantization_config.layer_bpw' is [2]"),
            "bpw too large": (glq_quantization(layer_bpw={DOWN: 9}), f"gives layer '{DOWN}' the bpw 9"),
            "bpw not an integer": (glq_quantization(layer_bpw={DOWN: 2.5}), "the bpw 2.5"),
            "bpw a flag": (glq_quantization(layer_bpw={DOWN: True}), "the bpw true"),
            "bpw text": (glq_quantization(layer_bpw={DOWN: "4"}), "the bpw \"4\""),
        }
        for case, (quantization, fragment) in cases.items():
            with self.subTest(case):
                with open(self.path("config.json"), "w") as file:
                    json.dump({} if quantization is None else {"quantization_config": quantization}, file)
                self.assertRefused(lambda: read_glq_config(self.folder), f"model config {self.path('config.json')}",
                                   fragment)


class ReadTensorTableTest(CheckpointCase):
    def test_model_safetensors(self):
        tensors = glq_linear(self.rng, DOWN, 150, 40, 3)
        write_checkpoint(self.folder, tensors)
        table = read_tensor_table(self.folder)
        self.assertEqual(sorted(table), sorted(tensors))
        self.assertTrue(all(info.file == self.path("model.safetensors") for info in table.values()))

    def test_an_index_and_its_shards(self):
        tensors = {**glq_linear(self.rng, "a", 64, 16, 2), **glq_linear(self.rng, "b", 64, 16, 4)}
        shards = {"one.safetensors": [n for n in tensors if n.startswith("a.")],
                  "two.safetensors": [n for n in tensors if n.startswith("b.")]}
        write_checkpoint(self.folder, tensors, shards=shards)
        write_safetensors(self.path("stale.safetensors"), {"a.SU": tensors["a.SU"]})  # not listed: not read
        table = read_tensor_table(self.folder)
        self.assertEqual(sorted(table), sorted(tensors))
        for shard, names in shards.items():
            self.assertTrue(all(table[name].file == self.path(shard) for name in names))

    def test_index_naming_a_missing_shard(self):
        write_checkpoint(self.folder, {"x": scalar_f32(1.0)}, shards={"one.safetensors": ["x"]})
        write_index(self.folder, {"x": "one.safetensors", "y": "two.safetensors"})
        self.assertRefused(lambda: read_tensor_table(self.folder),
                           f"safetensors index {self.path('model.safetensors.index.json')}",
                           "lists shard 'two.safetensors', which is not in the folder")

    def test_index_naming_no_plain_file(self):
        for shard in ("../one.safetensors", "sub/one.safetensors", "", ".", 7):
            with self.subTest(shard=shard):
                write_index(self.folder, {"x": shard})
                self.assertRefused(lambda: read_tensor_table(self.folder), "puts tensor 'x' in",
                                   "not the name of a file in the checkpoint folder")

    def test_index_that_disagrees_with_its_shards(self):
        write_checkpoint(self.folder, {"x": scalar_f32(1.0), "y": scalar_f32(2.0)},
                         shards={"one.safetensors": ["x"], "two.safetensors": ["y"]})
        write_index(self.folder, {"x": "one.safetensors", "y": "one.safetensors"})
        self.assertRefused(lambda: read_tensor_table(self.folder),
                           "puts tensor 'y' in 'one.safetensors', but that shard's header has no such tensor")

    def test_index_without_weight_map(self):
        with open(self.path("model.safetensors.index.json"), "w") as file:
            json.dump({"metadata": {}}, file)
        self.assertRefused(lambda: read_tensor_table(self.folder), "has no 'weight_map' object")

    def test_every_safetensors_file_without_an_index(self):
        write_safetensors(self.path("b.safetensors"), {"y": scalar_f32(2.0)})
        write_safetensors(self.path("a.safetensors"), {"x": scalar_f32(1.0)})
        table = read_tensor_table(self.folder)
        self.assertEqual({name: info.file for name, info in table.items()},
                         {"x": self.path("a.safetensors"), "y": self.path("b.safetensors")})

    def test_a_tensor_in_two_files(self):
        write_safetensors(self.path("a.safetensors"), {"x": scalar_f32(1.0)})
        write_safetensors(self.path("b.safetensors"), {"x": scalar_f32(1.0)})
        self.assertRefused(lambda: read_tensor_table(self.folder), self.path("a.safetensors"),
                           self.path("b.safetensors"), "holds tensor 'x'", "remove the stale copy")

    def test_a_damaged_shard_is_a_checkpoint_error_naming_it(self):
        with open(self.path("model.safetensors"), "wb") as file:
            file.write(b"\x05\x00\x00")
        self.assertRefused(lambda: read_tensor_table(self.folder), self.path("model.safetensors"), "too short")

    def test_no_weights(self):
        self.assertRefused(lambda: read_tensor_table(self.folder), f"checkpoint {self.folder}",
                           "has no model.safetensors")
        absent = self.path("absent")
        self.assertRefused(lambda: read_tensor_table(absent), f"checkpoint {absent}", "no such folder")


class QuantizedPrefixesTest(CheckpointCase):
    def write_and_read(self, tensors):
        write_checkpoint(self.folder, tensors)
        return read_tensor_table(self.folder)

    def test_prefixes_in_model_order(self):
        tensors = {"model.embed_tokens.weight": random_tensor(self.rng, "F16", [4, 2])}
        for layer in (10, 2, 1):
            for role in ("self_attn.q_proj", "mlp.down_proj"):
                tensors.update(glq_linear(self.rng, f"model.layers.{layer}.{role}", 64, 16, 2))
        self.assertEqual(quantized_prefixes(self.write_and_read(tensors)),
                         [f"model.layers.{layer}.{role}" for layer in (1, 2, 10)
                          for role in ("mlp.down_proj", "self_attn.q_proj")])

    def test_a_leaf_that_is_no_stage_name(self):
        for leaf in ("Qidxs5_e8p", "Qidxs1_e8p", "Qidxs_e8q", "Qidxs2", "Qidxs_e8p_old"):
            with self.subTest(leaf=leaf):
                tensors = glq_linear(self.rng, DOWN, 64, 16, 2)
                tensors[f"{DOWN}.{leaf}"] = tensors[f"{DOWN}.Qidxs_e8p"]
                table = self.write_and_read(tensors)
                self.assertRefused(lambda: quantized_prefixes(table), f"tensor '{DOWN}.{leaf}'",
                                   self.path("model.safetensors"), "is no stage tensor")
                self.assertRefused(lambda: find_linear(table, DOWN, 64, 16), f"tensor '{DOWN}.{leaf}'")

    def test_two_codebooks_for_one_stage(self):
        tensors = glq_linear(self.rng, DOWN, 64, 16, 4)
        tensors[f"{DOWN}.Qidxs2_e81b"] = random_tensor(self.rng, "I64", [16, 1])
        table = self.write_and_read(tensors)
        for call in (lambda: quantized_prefixes(table), lambda: find_linear(table, DOWN, 64, 16)):
            self.assertRefused(call, f"'{DOWN}.Qidxs2_e8p'", f"'{DOWN}.Qidxs2_e81b'", "two codebooks for stage 1")


class FindLinearTest(CheckpointCase):
    def table_of(self, tensors, **checkpoint):
        write_checkpoint(self.folder, tensors, **checkpoint)
        return read_tensor_table(self.folder)

    def test_every_recipe(self):
        kinds = {2: ["e8p"], 3: ["e8p", "e81b"], 4: ["e8p", "e8p"], 5: ["e8p", "e8p", "e81b"],
                 6: ["e8p"] * 3, 7: ["e8p"] * 3 + ["e81b"], 8: ["e8p"] * 4}
        stage_names = ["Qidxs_e8p", "Qidxs2_e8p", "Qidxs3_e8p", "Qidxs4_e8p"]
        for bpw in range(2, 9):
            with self.subTest(bpw=bpw):
                prefix = f"model.layers.{bpw}.mlp.down_proj"
                table = self.table_of(glq_linear(self.rng, prefix, 150, 40, bpw))
                linear = find_linear(table, prefix, 150, 40, expected_bpw=bpw)
                self.assertEqual((linear.prefix, linear.bpw, linear.in_features, linear.out_features),
                                 (prefix, bpw, 150, 40))
                self.assertEqual((linear.m_pad, linear.n_pad), (48, 192))
                self.assertEqual(linear.stage_kinds, kinds[bpw])
                expected_stages = [name if kind == "e8p" else name.replace("e8p", "e81b")
                                   for name, kind in zip(stage_names, kinds[bpw])]
                self.assertEqual([info.name for info in linear.stages], [f"{prefix}.{n}" for n in expected_stages])
                self.assertEqual([info.shape for info in linear.stages],
                                 [(3, 3, 8, 4) if kind == "e8p" else (48, 3) for kind in kinds[bpw]])
                self.assertEqual([info.name for info in linear.inv_resid_scales],
                                 [f"{prefix}.{leaf}" for leaf in
                                  ["inv_resid_scale", "inv_resid_scale2", "inv_resid_scale3"][:len(kinds[bpw]) - 1]])
                self.assertEqual((linear.su.name, linear.su.shape), (f"{prefix}.SU", (48,)))
                self.assertEqual((linear.sv.name, linear.sv.shape), (f"{prefix}.SV", (192,)))
                self.assertEqual(linear.wscale.name, f"{prefix}.Wscale")
                self.assertIsNone(linear.bias)
                self.assertTrue(all(info.file == self.path("model.safetensors") for info in linear.stages))

    def test_an_unpadded_model_sized_layer(self):
        table = self.table_of(glq_linear(self.rng, DOWN, 4096, 1024, 2))
        linear = find_linear(table, DOWN, 4096, 1024)
        self.assertEqual((linear.m_pad, linear.n_pad, linear.stages[0].shape), (1024, 4096, (64, 64, 8, 4)))

    def test_bias_of_each_dtype(self):
        for dtype in ("F16", "BF16", "F32"):
            with self.subTest(dtype=dtype):
                table = self.table_of(glq_linear(self.rng, DOWN, 150, 40, 3, bias_dtype=dtype))
                bias = find_linear(table, DOWN, 150, 40).bias
                self.assertEqual((bias.name, bias.dtype, bias.shape), (f"{DOWN}.bias", dtype, (40,)))

    def test_an_unquantized_linear_is_none(self):
        table = self.table_of({**glq_linear(self.rng, "model.layers.10.mlp.down_proj", 64, 16, 2),
                               "model.layers.1.mlp.down_proj.weight": random_tensor(self.rng, "F16", [16, 64])})
        self.assertIsNone(find_linear(table, "model.layers.1.mlp.down_proj", 64, 16))
        self.assertIsNone(find_linear(table, "model.layers.1", 64, 16))

    def test_sharded_checkpoint_walked_the_way_a_loader_walks_it(self):
        tensors = {}
        layer_bpw = {}
        for layer, bpw in enumerate((2, 3, 4)):
            prefix = f"model.layers.{layer}.mlp.down_proj"
            tensors.update(glq_linear(self.rng, prefix, 150, 40, bpw, bias_dtype="BF16"))
            layer_bpw[prefix] = bpw
        names = sorted(tensors)
        self.rng.shuffle(names)
        write_checkpoint(self.folder, tensors, glq_quantization(layer_bpw=layer_bpw),
                         shards={"model-00001-of-00002.safetensors": names[:20],
                                 "model-00002-of-00002.safetensors": names[20:]})
        config = read_glq_config(self.folder)
        table = read_tensor_table(self.folder)
        prefixes = quantized_prefixes(table)
        self.assertEqual(prefixes, list(layer_bpw))
        for prefix in prefixes:
            linear = find_linear(table, prefix, 150, 40, config.block_diagonal, config.layer_bpw[prefix])
            self.assertEqual(linear.bpw, layer_bpw[prefix])
            self.assertEqual(linear.bias.dtype, "BF16")

    def test_legacy_single_block_padding(self):
        table = self.table_of(glq_linear(self.rng, DOWN, 150, 40, 2, block_diagonal=False))
        linear = find_linear(table, DOWN, 150, 40, block_diagonal=False)
        self.assertEqual((linear.m_pad, linear.n_pad), (64, 256))
        self.assertRefused(lambda: find_linear(table, DOWN, 150, 40), "n_pad 192 and m_pad 48",
                           "this checkpoint belongs to another model")

    def test_layer_bpw_that_disagrees_with_the_tensors(self):
        table = self.table_of(glq_linear(self.rng, DOWN, 150, 40, 4))
        self.assertRefused(lambda: find_linear(table, DOWN, 150, 40, expected_bpw=3),
                           f"'quantization_config.layer_bpw' gives layer '{DOWN}' 3 bpw", "make it 4 bpw",
                           self.path("model.safetensors"))

    def test_tensors_of_another_model(self):
        table = self.table_of(glq_linear(self.rng, DOWN, 4096, 1024, 2))
        self.assertRefused(lambda: find_linear(table, DOWN, 1024, 4096), f"tensor '{DOWN}.Qidxs_e8p'",
                           self.path("model.safetensors"), "has shape [64, 64, 8, 4]", "= [256, 16, 8, 4]",
                           "1024 -> 4096 (in -> out)", "belongs to another model")

    def test_features_glqjit_cannot_serve(self):
        table = self.table_of(glq_linear(self.rng, DOWN, 64, 16, 2))
        self.assertRefused(lambda: find_linear(table, DOWN, 0, 16), f"linear '{DOWN}'", "in_features 0")

    def test_missing_tensors(self):
        for bpw, leaf in ((2, "SU"), (2, "SV"), (2, "Wscale"), (3, "inv_resid_scale"), (8, "inv_resid_scale3")):
            with self.subTest(leaf=leaf):
                tensors = glq_linear(self.rng, DOWN, 150, 40, bpw)
                del tensors[f"{DOWN}.{leaf}"]
                table = self.table_of(tensors)
                self.assertRefused(lambda: find_linear(table, DOWN, 150, 40), f"tensor '{DOWN}.{leaf}'",
                                   "is missing", f"'{DOWN}.Qidxs_e8p' is in {self.path('model.safetensors')}",
                                   "re-export this checkpoint")

    def test_wrong_dtypes(self):
        m_pad, n_pad = padded_sizes(150, 40)
        cases = (
            (3, "Qidxs_e8p", "I32", (m_pad // 16, n_pad // 64, 8, 4), "I64"),
            (3, "Qidxs2_e81b", "U8", (m_pad, n_pad // 64), "I64"),
            (3, "SU", "F32", (m_pad,), "F16"),
            (3, "SV", "BF16", (n_pad,), "F16"),
            (3, "Wscale", "F16", (), "F32"),
            (3, "inv_resid_scale", "F64", (), "F32"),
            (2, "bias", "I64", (40,), "F16 or BF16 or F32"),
        )
        for bpw, leaf, dtype, shape, expected in cases:
            with self.subTest(leaf=leaf):
                tensors = glq_linear(self.rng, DOWN, 150, 40, bpw)
                tensors[f"{DOWN}.{leaf}"] = random_tensor(self.rng, dtype, shape)
                table = self.table_of(tensors)
                self.assertRefused(lambda: find_linear(table, DOWN, 150, 40), f"tensor '{DOWN}.{leaf}'",
                                   f"(in {self.path('model.safetensors')}) is {dtype}", f"stores it as {expected}")

    def test_wrong_shapes(self):
        m_pad, n_pad = padded_sizes(150, 40)
        cases = (
            (4, "Qidxs2_e8p", (m_pad // 16, n_pad // 64 + 1, 8, 4), "(m_pad/16, n_pad/64, 8, 4) = [3, 3, 8, 4]"),
            (3, "Qidxs2_e81b", (m_pad, n_pad // 8), "(m_pad, n_pad/64) = [48, 3]"),
            (2, "SU", (m_pad + 16,), "(m_pad) = [48]"),
            (2, "SV", (150,), "(n_pad) = [192]"),
            (2, "bias", (m_pad,), "(out_features) = [40]"),
        )
        for bpw, leaf, shape, rule in cases:
            with self.subTest(leaf=leaf):
                tensors = glq_linear(self.rng, DOWN, 150, 40, bpw)
                tensors[f"{DOWN}.{leaf}"] = random_tensor(self.rng, tensors[f"{DOWN}.{leaf}"][0] if leaf != "bias"
                                                          else "F16", shape)
                table = self.table_of(tensors)
                self.assertRefused(lambda: find_linear(table, DOWN, 150, 40), f"tensor '{DOWN}.{leaf}'",
                                   self.path("model.safetensors"), f"it must be {rule}", "re-export")

    def test_scalars_of_shape_empty_or_one_only(self):
        for shape, accepted in (((), True), ((1,), True), ((2,), False), ((1, 1), False)):
            with self.subTest(shape=shape):
                tensors = glq_linear(self.rng, DOWN, 64, 16, 3)
                tensors[f"{DOWN}.inv_resid_scale"] = random_tensor(self.rng, "F32", shape)
                table = self.table_of(tensors)
                if accepted:
                    self.assertEqual(find_linear(table, DOWN, 64, 16).inv_resid_scales[0].shape, shape)
                else:
                    self.assertRefused(lambda: find_linear(table, DOWN, 64, 16), f"tensor '{DOWN}.inv_resid_scale'",
                                       "an fp32 scalar (shape [] or [1])")

    def test_incomplete_stages(self):
        cases = ((6, "Qidxs2_e8p", f"no '{DOWN}.Qidxs2_e8p' or '{DOWN}.Qidxs2_e81b' (stage 1)"),
                 (4, "Qidxs_e8p", f"no '{DOWN}.Qidxs_e8p' (stage 0)"))
        for bpw, leaf, fragment in cases:
            with self.subTest(leaf=leaf):
                tensors = glq_linear(self.rng, DOWN, 64, 16, bpw)
                del tensors[f"{DOWN}.{leaf}"]
                table = self.table_of(tensors)
                self.assertRefused(lambda: find_linear(table, DOWN, 64, 16), fragment, "the stages are incomplete",
                                   self.path("model.safetensors"))

    def test_a_sequence_that_is_no_recipe(self):
        tensors = glq_linear(self.rng, DOWN, 64, 16, 3)
        tensors[f"{DOWN}.Qidxs3_e8p"] = random_tensor(self.rng, "I64", [1, 1, 8, 4])
        tensors[f"{DOWN}.inv_resid_scale2"] = scalar_f32(0.1)
        table = self.table_of(tensors)
        self.assertRefused(lambda: find_linear(table, DOWN, 64, 16), "[E8P, E81B, E8P], which is no recipe")

    def test_stray_scales(self):
        for bpw, leaf, stage in ((2, "inv_resid_scale", 1), (4, "inv_resid_scale2", 2), (5, "inv_resid_scale3", 3)):
            with self.subTest(leaf=leaf):
                tensors = glq_linear(self.rng, DOWN, 64, 16, bpw)
                tensors[f"{DOWN}.{leaf}"] = scalar_f32(0.1)
                table = self.table_of(tensors)
                self.assertRefused(lambda: find_linear(table, DOWN, 64, 16), f"tensor '{DOWN}.{leaf}'",
                                   self.path("model.safetensors"), f"is the scale of stage {stage}", "stray")


if __name__ == "__main__":
    unittest.main()
