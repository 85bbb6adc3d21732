// read_glq_checkpoint: exact shapes and bpw of every quantized linear from config.json and the
// safetensors headers, single-file and sharded; and hostile or foreign files as Errors naming
// the file and the tensor.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "safetensors_writer.hpp"
#include "test_helpers.hpp"
#include "tuner/checkpoint.hpp"

using namespace glqjit;
using namespace glqjit::test;
using nlohmann::json;

namespace {

struct Dims {
  int64_t hidden = 200;
  int64_t intermediate = 500;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t head_dim = 48;
};

struct Role {
  std::string block;  // "self_attn" or "mlp"
  std::string name;
};
const std::vector<Role> kRoles = {{"self_attn", "q_proj"}, {"self_attn", "k_proj"}, {"self_attn", "v_proj"},
                                  {"self_attn", "o_proj"}, {"mlp", "gate_proj"},    {"mlp", "up_proj"},
                                  {"mlp", "down_proj"}};

// (in, out) of a role, from the decoder's published formulas.
std::pair<int64_t, int64_t> shape_of(const Dims& d, const std::string& role) {
  if (role == "q_proj") return {d.hidden, d.heads * d.head_dim};
  if (role == "k_proj" || role == "v_proj") return {d.hidden, d.kv_heads * d.head_dim};
  if (role == "o_proj") return {d.heads * d.head_dim, d.hidden};
  if (role == "down_proj") return {d.intermediate, d.hidden};
  return {d.hidden, d.intermediate};
}

std::string layer_name(int layer, const Role& role) {
  return fmt::format("model.layers.{}.{}.{}", layer, role.block, role.name);
}

Dims random_dims(std::mt19937_64& rng) {
  Dims d;
  d.kv_heads = int64_t(rng() % 3 + 1);
  d.heads = d.kv_heads * int64_t(rng() % 3 + 1);
  d.head_dim = int64_t(rng() % 12 + 1) * 8;
  d.hidden = int64_t(rng() % 600 + 1);
  d.intermediate = int64_t(rng() % 1200 + 1);
  return d;
}

json glq_quantization(const std::vector<int>& bpw_of_layer, bool with_layer_bpw = true, bool block_diagonal = true) {
  json quantization = {{"quant_method", "glq"}, {"codebook", "e8p"}, {"block_diagonal", block_diagonal}};
  if (with_layer_bpw) {
    json layer_bpw = json::object();
    for (int layer = 0; layer < int(bpw_of_layer.size()); ++layer) {
      for (const Role& role : kRoles) layer_bpw[layer_name(layer, role)] = bpw_of_layer[size_t(layer)];
    }
    quantization["layer_bpw"] = layer_bpw;
  }
  return quantization;
}

json config_of(const Dims& d, int layers, const json& quantization) {
  json config = {{"architectures", {"LlamaForCausalLM"}},
                 {"model_type", "llama"},
                 {"hidden_size", d.hidden},
                 {"intermediate_size", d.intermediate},
                 {"num_attention_heads", d.heads},
                 {"num_key_value_heads", d.kv_heads},
                 {"head_dim", d.head_dim},
                 {"num_hidden_layers", layers},
                 {"vocab_size", 300},
                 {"torch_dtype", "bfloat16"}};
  if (!quantization.is_null()) config["quantization_config"] = quantization;
  return config;
}

std::vector<SafetensorsTensor> model_tensors(const Dims& d, const std::vector<int>& bpw_of_layer,
                                             const GlqLinearOptions& options = {}) {
  std::vector<SafetensorsTensor> tensors;
  for (int layer = 0; layer < int(bpw_of_layer.size()); ++layer) {
    for (const Role& role : kRoles) {
      const auto [in, out] = shape_of(d, role.name);
      for (SafetensorsTensor& tensor :
           glq_linear_tensors(layer_name(layer, role), in, out, bpw_of_layer[size_t(layer)], options)) {
        tensors.push_back(std::move(tensor));
      }
    }
    tensors.push_back({fmt::format("model.layers.{}.input_layernorm.weight", layer), "BF16", {d.hidden}, {}});
  }
  return tensors;
}

// The unquantized tensors every checkpoint also holds.
std::vector<SafetensorsTensor> unquantized_tensors(const Dims& d) {
  return {{"model.embed_tokens.weight", "BF16", {300, d.hidden}, {}},
          {"model.norm.weight", "BF16", {d.hidden}, {}},
          {"lm_head.weight", "BF16", {300, d.hidden}, {}}};
}

void write_json(const std::string& path, const json& value) { std::ofstream(path) << value.dump(2); }

void write_checkpoint(const TempDir& dir, const json& config, std::vector<SafetensorsTensor> tensors) {
  write_json(dir.file("config.json"), config);
  write_safetensors(dir.file("model.safetensors"), tensors);
}

SafetensorsTensor& tensor_named(std::vector<SafetensorsTensor>& tensors, const std::string& name) {
  const auto found = std::find_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.name == name; });
  REQUIRE(found != tensors.end());
  return *found;
}

void remove_tensor(std::vector<SafetensorsTensor>& tensors, const std::string& name) {
  tensor_named(tensors, name);
  tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [&](const auto& t) { return t.name == name; }),
                tensors.end());
}

// Every linear of the model as read_glq_checkpoint should give it.
void check_model(const ModelShapes& shapes, const Dims& d, const std::vector<int>& bpw_of_layer,
                 bool with_bias = false) {
  REQUIRE(shapes.linears.size() == kRoles.size() * bpw_of_layer.size());
  std::map<std::string, const ModelLinear*> by_name;
  for (const ModelLinear& linear : shapes.linears) by_name[linear.name] = &linear;
  for (int layer = 0; layer < int(bpw_of_layer.size()); ++layer) {
    for (const Role& role : kRoles) {
      const std::string name = layer_name(layer, role);
      INFO(name);
      REQUIRE(by_name.count(name) == 1);
      const ModelLinear& linear = *by_name[name];
      const auto [in, out] = shape_of(d, role.name);
      CHECK(linear.in_features == in);
      CHECK(linear.out_features == out);
      CHECK(linear.bpw == bpw_of_layer[size_t(layer)]);
      CHECK(linear.has_bias == with_bias);
      CHECK(linear.count == 1);
    }
  }
  // Model order: the layer numbers never go down ("layers.2" before "layers.10").
  int previous = 0;
  for (const ModelLinear& linear : shapes.linears) {
    const int layer = std::stoi(linear.name.substr(std::string("model.layers.").size()));
    CHECK(layer >= previous);
    previous = layer;
  }
}

std::string read_error(const std::string& folder) {
  try {
    read_glq_checkpoint(folder);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("checkpoints at 2, 3 and 4 bpw give every linear its exact shape and bpw", "[models]") {
  std::mt19937_64 rng(42);
  for (int bpw : {2, 3, 4}) {
    for (int trial = 0; trial < 3; ++trial) {
      const Dims d = random_dims(rng);
      const std::vector<int> bpw_of_layer(3, bpw);
      INFO(fmt::format("bpw {} hidden {} intermediate {} heads {}/{} head_dim {}", bpw, d.hidden, d.intermediate,
                       d.heads, d.kv_heads, d.head_dim));
      TempDir dir;
      std::vector<SafetensorsTensor> tensors = model_tensors(d, bpw_of_layer);
      for (SafetensorsTensor& tensor : unquantized_tensors(d)) tensors.push_back(tensor);
      write_checkpoint(dir, config_of(d, 3, glq_quantization(bpw_of_layer)), tensors);
      const ModelShapes shapes = read_glq_checkpoint(dir.path().string());
      check_model(shapes, d, bpw_of_layer);
      CHECK(shapes.name == dir.path().filename().string());
      CHECK_FALSE(shapes.legacy_single_block);

      int linears = 0;
      for (const ModelLinear& merged : distinct_shapes(shapes.linears)) {
        CHECK(merged.bpw == bpw);
        CHECK(merged.count % 3 == 0);
        linears += merged.count;
      }
      CHECK(linears == 21);
    }
  }
}

TEST_CASE("every recipe 2..8 bpw in one model, listed in model order", "[models]") {
  std::mt19937_64 rng(9);
  const Dims d = random_dims(rng);
  std::vector<int> bpw_of_layer;
  for (int layer = 0; layer < 12; ++layer) bpw_of_layer.push_back(2 + layer % 7);
  TempDir dir;
  write_checkpoint(dir, config_of(d, 12, glq_quantization(bpw_of_layer)), model_tensors(d, bpw_of_layer));
  const ModelShapes shapes = read_glq_checkpoint(dir.path().string() + "/");
  check_model(shapes, d, bpw_of_layer);
  CHECK(shapes.linears[7 * 2].name == "model.layers.2.mlp.down_proj");
  CHECK(shapes.linears[7 * 3].name == "model.layers.3.mlp.down_proj");
  CHECK(shapes.name == dir.path().filename().string());
}

TEST_CASE("a bias marks the linear and gives its out_features", "[models]") {
  std::mt19937_64 rng(5);
  for (const char* bias_dtype : {"F16", "BF16", "F32"}) {
    const Dims d = random_dims(rng);
    TempDir dir;
    json config = config_of(d, 2, glq_quantization({3, 4}));
    config["attention_bias"] = true;
    config["mlp_bias"] = true;
    write_checkpoint(dir, config, model_tensors(d, {3, 4}, {true, bias_dtype, false}));
    check_model(read_glq_checkpoint(dir.path().string()), d, {3, 4}, true);
  }
}

TEST_CASE("a sharded checkpoint is read through its index", "[models]") {
  std::mt19937_64 rng(11);
  const Dims d = random_dims(rng);
  const std::vector<int> bpw_of_layer = {2, 3, 4, 2};
  std::vector<SafetensorsTensor> tensors = model_tensors(d, bpw_of_layer);
  for (SafetensorsTensor& tensor : unquantized_tensors(d)) tensors.push_back(tensor);

  TempDir dir;
  write_json(dir.file("config.json"), config_of(d, 4, glq_quantization(bpw_of_layer)));
  const std::vector<std::string> shards = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                           "model-00003-of-00003.safetensors"};
  std::vector<std::vector<SafetensorsTensor>> shard_tensors(3);
  json weight_map = json::object();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t shard = i * 3 / tensors.size();  // consecutive runs, so a linear may straddle two shards
    shard_tensors[shard].push_back(tensors[i]);
    weight_map[tensors[i].name] = shards[shard];
  }
  for (size_t shard = 0; shard < 3; ++shard) write_safetensors(dir.file(shards[shard]), shard_tensors[shard]);
  write_json(dir.file("model.safetensors.index.json"),
             {{"metadata", {{"total_size", 12345}}}, {"weight_map", weight_map}});
  check_model(read_glq_checkpoint(dir.path().string()), d, bpw_of_layer);

  SECTION("without an index, every *.safetensors file is read") {
    std::filesystem::remove(dir.file("model.safetensors.index.json"));
    std::ofstream(dir.file("README.md")) << "not a tensor file";
    check_model(read_glq_checkpoint(dir.path().string()), d, bpw_of_layer);
  }
  SECTION("an index naming a missing shard") {
    std::filesystem::remove(dir.file(shards[1]));
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument,
                      "model.safetensors.index.json", shards[1], "not in the folder");
  }
  SECTION("an index naming a tensor its shard lacks") {
    weight_map["model.layers.0.self_attn.q_proj.SU"] = shards[2];
    write_json(dir.file("model.safetensors.index.json"), {{"weight_map", weight_map}});
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument,
                      "model.safetensors.index.json", "model.layers.0.self_attn.q_proj.SU", shards[2]);
  }
  SECTION("an index with a shard outside the folder, or no weight_map") {
    weight_map["model.norm.weight"] = "../model.safetensors";
    write_json(dir.file("model.safetensors.index.json"), {{"weight_map", weight_map}});
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, "model.norm.weight",
                      "../model.safetensors");
    write_json(dir.file("model.safetensors.index.json"), {{"metadata", json::object()}});
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, "weight_map");
    std::ofstream(dir.file("model.safetensors.index.json")) << "{";
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, "index", "not JSON");
    std::ofstream(dir.file("model.safetensors.index.json")) << "{\"metadata\": {\"total_size\": 1e400}}";
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, "index", "not JSON");
  }
  SECTION("one tensor in two files") {
    std::filesystem::remove(dir.file("model.safetensors.index.json"));
    write_safetensors(dir.file("stale-copy.safetensors"), {tensors.front()});
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, tensors.front().name,
                      "stale-copy.safetensors", "holds too");
  }
}

TEST_CASE("a legacy checkpoint (block_diagonal false) pads to powers of two", "[models]") {
  const Dims d{700, 1500, 4, 2, 40};
  TempDir dir;
  write_checkpoint(dir, config_of(d, 2, glq_quantization({2, 3}, true, false)),
                   model_tensors(d, {2, 3}, {false, "BF16", true}));
  const ModelShapes shapes = read_glq_checkpoint(dir.path().string());
  CHECK(shapes.legacy_single_block);
  check_model(shapes, d, {2, 3});

  write_json(dir.file("config.json"), config_of(d, 2, glq_quantization({2, 3})));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, "model.layers.0",
                    "padded to m_pad", "config.json");
}

TEST_CASE("a linear config.json cannot size keeps its padded sizes only in an unpadded model", "[models]") {
  const Dims unpadded{512, 1024, 8, 2, 64};
  TempDir dir;
  std::vector<SafetensorsTensor> tensors = model_tensors(unpadded, {2});
  for (SafetensorsTensor& tensor : glq_linear_tensors("model.layers.0.self_attn.qkv_proj", 512, 768, 3)) {
    tensors.push_back(tensor);
  }
  json quantization = glq_quantization({2});
  quantization["layer_bpw"]["model.layers.0.self_attn.qkv_proj"] = 3;
  write_checkpoint(dir, config_of(unpadded, 1, quantization), tensors);
  const ModelShapes shapes = read_glq_checkpoint(dir.path().string());
  const auto fused = std::find_if(shapes.linears.begin(), shapes.linears.end(),
                                  [](const ModelLinear& l) { return l.name == "model.layers.0.self_attn.qkv_proj"; });
  REQUIRE(fused != shapes.linears.end());
  CHECK(fused->in_features == 512);
  CHECK(fused->out_features == 768);
  CHECK(fused->bpw == 3);

  const Dims padded{500, 1000, 4, 2, 125};
  std::vector<SafetensorsTensor> padded_tensors = model_tensors(padded, {2});
  for (SafetensorsTensor& tensor : glq_linear_tensors("model.layers.0.self_attn.qkv_proj", 500, 1000, 2)) {
    padded_tensors.push_back(tensor);
  }
  write_checkpoint(dir, config_of(padded, 1, glq_quantization({2}, false)), padded_tensors);
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument,
                    "model.layers.0.self_attn.qkv_proj", "'qkv_proj'", "config.json", "shape explicitly");
}

TEST_CASE("a checkpoint without layer_bpw takes the bpw from its tensors", "[models]") {
  std::mt19937_64 rng(3);
  const Dims d = random_dims(rng);
  TempDir dir;
  write_checkpoint(dir, config_of(d, 3, glq_quantization({}, false)), model_tensors(d, {4, 2, 3}));
  check_model(read_glq_checkpoint(dir.path().string()), d, {4, 2, 3});
}

TEST_CASE("checkpoint errors: no folder, no config, not a GLQ config", "[models][errors]") {
  const Dims d;
  TempDir dir;
  const std::string folder = dir.path().string();
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.file("absent")), Status::invalid_argument, dir.file("absent"),
                    "no such folder");
  write_json(dir.file("config.json"), config_of(d, 1, nullptr));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.file("config.json")), Status::invalid_argument, "config.json",
                    "not a folder");

  write_safetensors(dir.file("model.safetensors"), model_tensors(d, {2}));
  std::filesystem::remove(dir.file("config.json"));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, folder, "no config.json");

  write_json(dir.file("config.json"), config_of(d, 1, nullptr));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, dir.file("config.json"),
                    "quantization_config.quant_method", "no GLQ checkpoint", "--model");
  write_json(dir.file("config.json"), config_of(d, 1, {{"quant_method", "awq"}, {"bits", 4}}));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, dir.file("config.json"), "\"awq\"", "glq");
  write_json(dir.file("config.json"), config_of(d, 1, {{"quant_method", "glq"}, {"codebook", "e8"}}));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "quantization_config.codebook", "\"e8\"",
                    "e8p");
  write_json(dir.file("config.json"), config_of(d, 1, {{"quant_method", "glq"}}));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "quantization_config.codebook");
  write_json(dir.file("config.json"), config_of(d, 1, glq_quantization({2})));
  std::ofstream(dir.file("config.json")) << "{\"model_type\": ";
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, dir.file("config.json"), "not JSON");
}

TEST_CASE("checkpoint errors: no tensor files, no GLQ tensors", "[models][errors]") {
  const Dims d;
  TempDir dir;
  write_json(dir.file("config.json"), config_of(d, 1, glq_quantization({2}, false)));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, "no model.safetensors",
                    "*.safetensors");
  write_safetensors(dir.file("model.safetensors"), unquantized_tensors(d));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(dir.path().string()), Status::invalid_argument, "Qidxs_e8p", "no GLQ linear");
}

TEST_CASE("hostile safetensors headers are refused before anything is trusted", "[models][errors]") {
  const Dims d;
  TempDir dir;
  write_json(dir.file("config.json"), config_of(d, 1, glq_quantization({2}, false)));
  const std::string file = dir.file("model.safetensors");
  const std::string folder = dir.path().string();
  const std::string good_header = safetensors_header(unquantized_tensors(d)).dump();
  const auto write_with = [&](const json& header, uint64_t data_bytes) {
    write_safetensors_raw(file, header.dump(), std::string(data_bytes, '\0'));
  };
  const json one_tensor = safetensors_header({{"model.norm.weight", "F32", {4, 2}, {}}});

  SECTION("truncated before the header length") {
    std::ofstream(file, std::ios::binary) << "abcde";
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "5 bytes", "8-byte header length");
  }
  SECTION("truncated inside the header") {
    write_safetensors_raw(file, good_header.substr(0, 50), "", good_header.size());
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file,
                      fmt::format("says its header is {} bytes", good_header.size()), "only 50");
  }
  SECTION("a header length over 100 MB") {
    write_safetensors_raw(file, good_header, "", uint64_t(200) << 20);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "100 MB");
    write_safetensors_raw(file, "", "", ~uint64_t(0));
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "100 MB");
  }
  SECTION("a header that is not JSON, or not an object") {
    write_safetensors_raw(file, "{\"a\": [1, 2", "");
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "not JSON");
    write_safetensors_raw(file, "[1, 2]", "");
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "array", "not an object");
    write_safetensors_raw(file, std::string("{\"a\xff\": 1}"), "");
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "not JSON");
    // nlohmann::json reports a number beyond a double as out_of_range (found by fuzz_safetensors_header).
    write_safetensors_raw(file, "{\"a\": 1e400}", "");
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "not JSON", "1e400");
  }
  SECTION("a tensor entry that is not an object with dtype, shape and data_offsets") {
    write_with({{"model.norm.weight", 3}}, 0);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "model.norm.weight", "dtype");
    json no_offsets = one_tensor;
    no_offsets["model.norm.weight"].erase("data_offsets");
    write_with(no_offsets, 32);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "model.norm.weight", "data_offsets");
    json bad_metadata = one_tensor;
    bad_metadata["__metadata__"] = "pt";
    write_with(bad_metadata, 32);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "__metadata__");
  }
  SECTION("an unknown dtype") {
    for (const json& dtype : {json("Q4"), json("f32"), json(4)}) {
      json header = one_tensor;
      header["model.norm.weight"]["dtype"] = dtype;
      write_with(header, 32);
      GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "model.norm.weight", dtype.dump());
    }
  }
  SECTION("a shape that is not a list of sizes") {
    for (const json& shape : {json::array({4, -2}), json(8), json::array({4.5, 2}), json::array({"4", 2})}) {
      json header = one_tensor;
      header["model.norm.weight"]["shape"] = shape;
      write_with(header, 32);
      GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "model.norm.weight", "shape");
    }
    json huge = one_tensor;
    huge["model.norm.weight"]["shape"] = {uint64_t(1) << 62, uint64_t(1) << 62, 16};  // wraps to 0 bytes unchecked
    huge["model.norm.weight"]["data_offsets"] = {0, 0};
    write_with(huge, 0);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "model.norm.weight", "bytes");
  }
  SECTION("offsets out of range") {
    json header = one_tensor;
    header["model.norm.weight"]["data_offsets"] = {0, 32};
    write_with(header, 16);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "model.norm.weight",
                      "beyond the 16 bytes");
    for (const json& offsets : {json::array({40, 8}), json::array({-8, 24}), json::array({0}), json("0-32")}) {
      header["model.norm.weight"]["data_offsets"] = offsets;
      write_with(header, 64);
      GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "model.norm.weight", "data_offsets");
    }
  }
  SECTION("offsets that do not match dtype and shape") {
    json header = one_tensor;
    header["model.norm.weight"]["data_offsets"] = {0, 16};
    write_with(header, 16);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "model.norm.weight", "32 bytes",
                      "hold 16 bytes");
  }
  SECTION("overlapping tensors, gaps and trailing bytes") {
    const std::vector<SafetensorsTensor> two = {{"model.a", "F32", {4}, {}}, {"model.b", "F32", {4}, {}}};
    json header = safetensors_header(two);
    header["model.b"]["data_offsets"] = {8, 24};
    write_with(header, 24);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "'model.b'", "overlaps",
                      "'model.a'");
    header["model.b"]["data_offsets"] = {20, 36};
    write_with(header, 36);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "[16, 20)", "no tensor");
    header = safetensors_header(two);
    write_with(header, 40);
    GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, file, "end at byte 32", "40 bytes");
  }
  SECTION("a header padded with spaces and empty tensors are fine") {
    std::vector<SafetensorsTensor> tensors = model_tensors(d, {2});
    tensors.push_back({"model.empty", "F32", {0, 5}, {}});
    write_safetensors(file, tensors);
    check_model(read_glq_checkpoint(folder), d, {2});
  }
}

TEST_CASE("GLQ tensors of the wrong dtype, shape or stage list are named", "[models][errors]") {
  const Dims d;
  const std::string q = "model.layers.0.self_attn.q_proj";
  TempDir dir;
  const std::string folder = dir.path().string();
  const auto expect_error = [&](std::vector<SafetensorsTensor> tensors, std::initializer_list<std::string> words) {
    write_checkpoint(dir, config_of(d, 1, glq_quantization({3}, false)), std::move(tensors));
    const std::string message = read_error(folder);
    INFO("message: " << message);
    REQUIRE_FALSE(message.empty());
    for (const std::string& word : words) CHECK_THAT(message, Catch::Contains(word));
  };
  const std::vector<SafetensorsTensor> good = model_tensors(d, {3});
  write_checkpoint(dir, config_of(d, 1, glq_quantization({3})), good);
  check_model(read_glq_checkpoint(folder), d, {3});

  SECTION("wrong dtype of a stage") {
    std::vector<SafetensorsTensor> tensors = good;
    tensor_named(tensors, q + ".Qidxs_e8p").dtype = "I32";
    expect_error(tensors, {q + ".Qidxs_e8p", "model.safetensors", "I32", "I64"});
    tensors = good;
    tensor_named(tensors, q + ".Qidxs2_e81b").dtype = "U64";
    expect_error(tensors, {q + ".Qidxs2_e81b", "U64"});
  }
  SECTION("wrong shape of a stage") {
    std::vector<SafetensorsTensor> tensors = good;
    tensor_named(tensors, q + ".Qidxs_e8p").shape = {13, 4, 4, 8};
    expect_error(tensors, {q + ".Qidxs_e8p", "[13, 4, 4, 8]", "(m_pad/16, n_pad/64, 8, 4)"});
    tensors = good;
    tensor_named(tensors, q + ".Qidxs2_e81b").shape = {192, 3};
    expect_error(tensors, {q + ".Qidxs2_e81b", "[192, 3]", "(m_pad, n_pad/64)", "[192, 4]"});
  }
  SECTION("wrong shape or dtype of SU, SV, Wscale, a scale or the bias") {
    std::vector<SafetensorsTensor> tensors = good;
    tensor_named(tensors, q + ".SU").shape = {200};
    tensor_named(tensors, q + ".SU").data.clear();
    expect_error(tensors, {q + ".SU", "[200]", "m_pad", "[192]"});
    tensors = good;
    tensor_named(tensors, q + ".SV").dtype = "BF16";
    expect_error(tensors, {q + ".SV", "BF16", "F16"});
    tensors = good;
    tensor_named(tensors, q + ".Wscale") = {q + ".Wscale", "F32", {2}, {}};
    expect_error(tensors, {q + ".Wscale", "[2]", "scalar"});
    tensors = good;
    tensor_named(tensors, q + ".inv_resid_scale") = {q + ".inv_resid_scale", "F16", {}, {}};
    expect_error(tensors, {q + ".inv_resid_scale", "F16", "F32"});
    tensors = good;
    tensors.push_back({q + ".bias", "BF16", {100}, {}});
    expect_error(tensors, {q + ".bias", "[100]", "192"});
    tensors.back() = {q + ".bias", "I64", {192}, {}};
    expect_error(tensors, {q + ".bias", "I64"});
  }
  SECTION("missing SV, SU, Wscale or a scale") {
    for (const char* leaf : {".SV", ".SU", ".Wscale", ".inv_resid_scale", ".Qidxs2_e81b"}) {
      std::vector<SafetensorsTensor> tensors = good;
      remove_tensor(tensors, q + leaf);
      if (std::string(leaf) == ".Qidxs2_e81b") {
        expect_error(tensors, {q + ".inv_resid_scale", "stage 2", "stray"});  // now a 2 bpw linear with a stray scale
      } else {
        expect_error(tensors, {q + leaf, "missing"});
      }
    }
  }
  SECTION("stage sequences that are no recipe") {
    std::vector<SafetensorsTensor> tensors = good;
    tensors.push_back({q + ".Qidxs3_e8p", "I64", {12, 4, 8, 4}, {}});
    tensors.push_back({q + ".inv_resid_scale2", "F32", {}, {}});
    expect_error(tensors, {q, "[E8P, E81B, E8P]", "no recipe"});

    tensors = good;
    remove_tensor(tensors, q + ".Qidxs2_e81b");
    tensors.push_back({q + ".Qidxs3_e8p", "I64", {12, 4, 8, 4}, {}});
    expect_error(tensors, {q, "Qidxs2_e8p or", "Qidxs2_e81b", "stage 2"});

    tensors = good;
    tensor_named(tensors, q + ".Qidxs_e8p") = {q + ".Qidxs_e81b", "I64", {192, 4}, {}};
    expect_error(tensors, {q, "[E81B, E81B]"});

    tensors = good;
    tensors.push_back({q + ".Qidxs2_e8p", "I64", {12, 4, 8, 4}, {}});
    expect_error(tensors, {q, "Qidxs2_e8p", "Qidxs2_e81b", "two codebooks"});

    for (const char* leaf : {".Qidxs5_e8p", ".Qidxs1_e8p", ".Qidxs_e8", ".Qidxs"}) {
      tensors = good;
      tensors.push_back({q + leaf, "I64", {1}, {}});
      expect_error(tensors, {q + leaf, "no stage tensor"});
    }
  }
  SECTION("sizes that do not pad to the tensors") {
    std::vector<SafetensorsTensor> tensors = model_tensors(Dims{300, 500, 4, 2, 48}, {3});
    // The first linear in model order: down_proj, 500 -> 300 in the tensors, 500 -> 200 in config.json.
    expect_error(tensors,
                 {"model.layers.0.mlp.down_proj", "m_pad 304 x n_pad 512", "pads to 208 x 512", "config.json"});
  }
}

TEST_CASE("layer_bpw must agree with the tensors", "[models][errors]") {
  const Dims d;
  TempDir dir;
  const std::string folder = dir.path().string();
  const std::vector<SafetensorsTensor> tensors = model_tensors(d, {2, 4});

  json quantization = glq_quantization({2, 4});
  quantization["layer_bpw"]["model.layers.1.mlp.up_proj"] = 3;
  write_checkpoint(dir, config_of(d, 2, quantization), tensors);
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, dir.file("config.json"),
                    "model.layers.1.mlp.up_proj", "3 bpw", "make it 4");

  quantization = glq_quantization({2, 4});
  quantization["layer_bpw"].erase("model.layers.0.self_attn.v_proj");
  write_json(dir.file("config.json"), config_of(d, 2, quantization));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "model.layers.0.self_attn.v_proj",
                    "no entry");

  quantization = glq_quantization({2, 4});
  quantization["layer_bpw"]["model.layers.1.mlp.fc3"] = 2;
  write_json(dir.file("config.json"), config_of(d, 2, quantization));
  GLQ_REQUIRE_ERROR(read_glq_checkpoint(folder), Status::invalid_argument, "model.layers.1.mlp.fc3",
                    "model.layers.1.mlp.fc3.Qidxs_e8p");
}
