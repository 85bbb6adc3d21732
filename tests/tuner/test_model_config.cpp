// read_model_config: the seven linears of a decoder layer from a Hugging Face config.json, the
// layer_bpw of a GLQ config, and every bad input as an Error naming the file and the key.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "test_helpers.hpp"
#include "tuner/input_groups.hpp"
#include "tuner/model_config.hpp"

using namespace glqjit;
using namespace glqjit::test;
using nlohmann::json;

namespace {

const std::string kModels = GLQJIT_MODELS_DIR;

struct Expected {
  std::string name;
  int64_t in_features;
  int64_t out_features;
};

// The seven shapes of a decoder layer, written out from the model's published sizes.
std::vector<Expected> decoder_layer(int64_t hidden, int64_t intermediate, int64_t heads, int64_t kv_heads,
                                    int64_t head_dim) {
  return {{"q_proj", hidden, heads * head_dim},    {"k_proj", hidden, kv_heads * head_dim},
          {"v_proj", hidden, kv_heads * head_dim}, {"o_proj", heads * head_dim, hidden},
          {"gate_proj", hidden, intermediate},     {"up_proj", hidden, intermediate},
          {"down_proj", intermediate, hidden}};
}

void check_uniform(const ModelShapes& shapes, const std::vector<Expected>& expected, int count, int bpw = 0) {
  REQUIRE(shapes.linears.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("linear " << expected[i].name);
    const ModelLinear& linear = shapes.linears[i];
    CHECK(linear.name == expected[i].name);
    CHECK(linear.in_features == expected[i].in_features);
    CHECK(linear.out_features == expected[i].out_features);
    CHECK(linear.count == count);
    CHECK(linear.bpw == bpw);
  }
}

json llama_like(int64_t hidden = 256, int64_t intermediate = 688, int64_t heads = 8, int64_t kv_heads = 2,
                int64_t layers = 4) {
  return {{"model_type", "llama"},
          {"hidden_size", hidden},
          {"intermediate_size", intermediate},
          {"num_attention_heads", heads},
          {"num_key_value_heads", kv_heads},
          {"num_hidden_layers", layers},
          {"vocab_size", 1000}};
}

std::string write_config(const TempDir& dir, const json& config, const std::string& name = "config.json") {
  const std::string path = dir.file(name);
  std::ofstream(path) << config.dump(2);
  return path;
}

std::string write_text(const TempDir& dir, const std::string& text) {
  const std::string path = dir.file("config.json");
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("the shipped configs give the seven linears of their decoder layers", "[models]") {
  SECTION("Llama-3-8B") {
    const ModelShapes shapes = read_model_config(kModels + "/llama-3-8b.json");
    CHECK(shapes.name == "llama");
    check_uniform(shapes, decoder_layer(4096, 14336, 32, 8, 128), 32);
    CHECK(shapes.linears[1].out_features == 1024);
  }
  SECTION("Llama-3-70B") {
    const ModelShapes shapes = read_model_config(kModels + "/llama-3-70b.json");
    CHECK(shapes.name == "llama");
    check_uniform(shapes, decoder_layer(8192, 28672, 64, 8, 128), 80);
  }
  SECTION("SmolLM3-3B") {
    const ModelShapes shapes = read_model_config(kModels + "/smollm3-3b.json");
    CHECK(shapes.name == "smollm3");
    check_uniform(shapes, decoder_layer(2048, 11008, 16, 4, 128), 36);
    CHECK(shapes.linears[1].out_features == 512);
  }
  SECTION("Qwen3-8B") {
    const ModelShapes shapes = read_model_config(kModels + "/qwen3-8b.json");
    CHECK(shapes.name == "qwen3");
    check_uniform(shapes, decoder_layer(4096, 12288, 32, 8, 128), 36);
  }
  for (const char* file : {"llama-3-8b.json", "llama-3-70b.json", "smollm3-3b.json", "qwen3-8b.json"}) {
    for (const ModelLinear& linear : read_model_config(kModels + "/" + file).linears) CHECK_FALSE(linear.has_bias);
  }
}

TEST_CASE("random decoder sizes give the shapes their formulas say", "[models]") {
  std::mt19937_64 rng(20261201);
  TempDir dir;
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t kv_heads = int64_t(rng() % 8 + 1);
    const int64_t heads = kv_heads * int64_t(rng() % 6 + 1);
    const bool explicit_head_dim = rng() % 2 == 0;
    const int64_t head_dim = int64_t(rng() % 160 + 1);
    const int64_t hidden = explicit_head_dim ? int64_t(rng() % 5000 + 1) : heads * head_dim;
    const int64_t intermediate = int64_t(rng() % 20000 + 1);
    const int layers = int(rng() % 100 + 1);
    json config = llama_like(hidden, intermediate, heads, kv_heads, layers);
    if (explicit_head_dim) config["head_dim"] = head_dim;
    INFO("config " << config.dump());
    check_uniform(read_model_config(write_config(dir, config)),
                  decoder_layer(hidden, intermediate, heads, kv_heads, head_dim), layers);
  }
}

TEST_CASE("defaults: kv heads are the attention heads, a null head_dim is hidden / heads", "[models]") {
  TempDir dir;
  json config = llama_like(512, 1376, 8, 8, 2);
  config.erase("num_key_value_heads");
  config["head_dim"] = nullptr;
  check_uniform(read_model_config(write_config(dir, config)), decoder_layer(512, 1376, 8, 8, 64), 2);
}

TEST_CASE("a Gemma-style head_dim sets the attention width apart from hidden_size", "[models]") {
  TempDir dir;
  json config = llama_like(2304, 9216, 8, 4, 26);
  config["model_type"] = "gemma2";
  config["head_dim"] = 256;
  const ModelShapes shapes = read_model_config(write_config(dir, config));
  check_uniform(shapes, decoder_layer(2304, 9216, 8, 4, 256), 26);
  CHECK(shapes.linears[0].out_features == 2048);
  CHECK(shapes.linears[3].in_features == 2048);
}

TEST_CASE("sizes nested under text_config (Gemma-3) are read from there", "[models]") {
  TempDir dir;
  json text = llama_like(2560, 10240, 8, 4, 34);
  text["model_type"] = "gemma3_text";
  text["head_dim"] = 256;
  const json config = {{"model_type", "gemma3"}, {"text_config", text}, {"vision_config", {{"hidden_size", 1152}}}};
  const ModelShapes shapes = read_model_config(write_config(dir, config));
  CHECK(shapes.name == "gemma3");
  check_uniform(shapes, decoder_layer(2560, 10240, 8, 4, 256), 34);

  json nested_only = {{"text_config", text}};
  CHECK(read_model_config(write_config(dir, nested_only)).name == "gemma3_text");
  nested_only["text_config"].erase("num_attention_heads");
  GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, nested_only)), Status::invalid_argument,
                    "text_config.num_attention_heads", "missing", dir.file("config.json"));
}

TEST_CASE("biases follow attention_bias and mlp_bias, and Qwen2's fixed q/k/v biases", "[models]") {
  TempDir dir;
  const auto biases = [&](const json& config) {
    std::vector<bool> has;
    for (const ModelLinear& linear : read_model_config(write_config(dir, config)).linears)
      has.push_back(linear.has_bias);
    return has;
  };
  json config = llama_like();
  CHECK(biases(config) == std::vector<bool>(7, false));
  config["attention_bias"] = true;
  CHECK(biases(config) == std::vector<bool>{true, true, true, true, false, false, false});
  config["mlp_bias"] = true;
  config["attention_bias"] = false;
  CHECK(biases(config) == std::vector<bool>{false, false, false, false, true, true, true});
  json qwen2 = llama_like();
  qwen2["model_type"] = "qwen2";
  CHECK(biases(qwen2) == std::vector<bool>{true, true, true, false, false, false, false});
}

TEST_CASE("a config without model_type is named after its folder", "[models]") {
  TempDir dir;
  json config = llama_like();
  config.erase("model_type");
  const ModelShapes shapes = read_model_config(write_config(dir, config));
  CHECK(shapes.name == dir.path().filename().string());
}

TEST_CASE("uniform layer_bpw gives seven entries counted over the layers", "[models]") {
  TempDir dir;
  json config = llama_like(4096, 14336, 32, 8, 32);
  json layer_bpw = json::object();
  for (int layer = 0; layer < 32; ++layer) {
    for (const char* role : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      layer_bpw[fmt::format("model.layers.{}.self_attn.{}", layer, role)] = 2;
    }
    for (const char* role : {"gate_proj", "up_proj", "down_proj"}) {
      layer_bpw[fmt::format("model.layers.{}.mlp.{}", layer, role)] = 2;
    }
  }
  config["quantization_config"] = {{"quant_method", "glq"}, {"codebook", "e8p"}, {"layer_bpw", layer_bpw}};
  const ModelShapes shapes = read_model_config(write_config(dir, config));
  check_uniform(shapes, decoder_layer(4096, 14336, 32, 8, 128), 32, 2);
}

TEST_CASE("mixed layer_bpw gives an entry per role and bpw; absent layers are left out", "[models]") {
  std::mt19937_64 rng(7);
  TempDir dir;
  const int layers = 24;
  json config = llama_like(2048, 5632, 16, 4, layers);
  json layer_bpw = json::object();
  std::map<std::pair<std::string, int>, int> expected;  // (role, bpw) -> count
  const std::vector<std::pair<std::string, std::string>> roles = {
      {"self_attn", "q_proj"}, {"self_attn", "k_proj"}, {"self_attn", "v_proj"}, {"self_attn", "o_proj"},
      {"mlp", "gate_proj"},    {"mlp", "up_proj"},      {"mlp", "down_proj"}};
  for (int layer = 0; layer < layers; ++layer) {
    for (const auto& [block, role] : roles) {
      const int bpw = int(rng() % 8 + 1);  // 1: unquantized, left out of layer_bpw
      if (bpw == 1) continue;
      layer_bpw[fmt::format("model.layers.{}.{}.{}", layer, block, role)] = bpw;
      ++expected[{role, bpw}];
    }
  }
  config["quantization_config"] = {{"quant_method", "glq"}, {"layer_bpw", layer_bpw}};
  const ModelShapes shapes = read_model_config(write_config(dir, config));
  REQUIRE(shapes.linears.size() == expected.size());
  const auto shapes_of_role = decoder_layer(2048, 5632, 16, 4, 128);
  size_t previous_role = 0;
  for (const ModelLinear& linear : shapes.linears) {
    INFO(linear.name << " at " << linear.bpw << " bpw");
    CHECK(linear.count == expected.at({linear.name, linear.bpw}));
    size_t role = 0;
    while (shapes_of_role[role].name != linear.name) ++role;
    CHECK(role >= previous_role);  // grouped in decoder order q, k, v, o, gate, up, down
    previous_role = role;
    CHECK(linear.in_features == shapes_of_role[role].in_features);
    CHECK(linear.out_features == shapes_of_role[role].out_features);
  }
}

TEST_CASE("the quantization_config of another method is ignored", "[models]") {
  TempDir dir;
  json config = llama_like();
  config["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}, {"layer_bpw", "not ours"}};
  const ModelConfig parsed = parse_model_config(write_config(dir, config));
  CHECK(parsed.quant_method == "gptq");
  CHECK_FALSE(parsed.glq.has_value());
  check_uniform(read_model_config(write_config(dir, config)), decoder_layer(256, 688, 8, 2, 32), 4);
}

TEST_CASE("parse_model_config keeps the GLQ keys as the file has them", "[models]") {
  TempDir dir;
  json config = llama_like();
  config["quantization_config"] = {{"quant_method", "glq"}, {"codebook", "e8p"}, {"block_diagonal", false}};
  ModelConfig parsed = parse_model_config(write_config(dir, config));
  REQUIRE(parsed.glq.has_value());
  CHECK(parsed.glq->codebook == "e8p");
  CHECK(parsed.glq->block_diagonal == std::optional<bool>(false));
  CHECK_FALSE(parsed.glq->layer_bpw.has_value());
  CHECK(parsed.num_hidden_layers == 4);
  CHECK(parsed.layer_linears.size() == 7);
  for (const ModelLinear& linear : parsed.layer_linears) CHECK(linear.count == 1);
}

TEST_CASE("distinct_shapes merges linears of one shape, bpw and bias", "[models]") {
  const std::vector<ModelLinear> linears = {
      {"model.layers.0.self_attn.q_proj", 4096, 4096, 2, false, 1},
      {"model.layers.0.self_attn.o_proj", 4096, 4096, 2, false, 1},
      {"model.layers.1.self_attn.q_proj", 4096, 4096, 2, false, 1},
      {"model.layers.1.self_attn.q_proj", 4096, 4096, 3, false, 1},
      {"model.layers.0.mlp.gate_proj", 4096, 14336, 2, false, 1},
      {"model.layers.0.mlp.up_proj", 4096, 14336, 2, true, 1},
      {"gate_proj", 4096, 14336, 2, false, 30},
  };
  const std::vector<ModelLinear> merged = distinct_shapes(linears);
  REQUIRE(merged.size() == 4);
  CHECK(merged[0].name == "q_proj+o_proj");
  CHECK(merged[0].count == 3);
  CHECK(merged[1].name == "q_proj");
  CHECK(merged[1].bpw == 3);
  CHECK(merged[2].name == "gate_proj");
  CHECK(merged[2].count == 31);
  CHECK(merged[3].name == "up_proj");
  CHECK(merged[3].has_bias);
  CHECK(distinct_shapes({}).empty());
}

TEST_CASE("config errors: missing file, folder, not JSON, not an object", "[models][errors]") {
  TempDir dir;
  const std::string missing = dir.file("no-such-config.json");
  GLQ_REQUIRE_ERROR(read_model_config(missing), Status::invalid_argument, missing, "no such file", "config.json");
  GLQ_REQUIRE_ERROR(read_model_config(dir.path().string()), Status::invalid_argument, dir.path().string(), "folder");
  const std::string broken = write_text(dir, "{\"hidden_size\": 4096,");
  GLQ_REQUIRE_ERROR(read_model_config(broken), Status::invalid_argument, broken, "not JSON");
  GLQ_REQUIRE_ERROR(read_model_config(write_text(dir, "")), Status::invalid_argument, "not JSON");
  GLQ_REQUIRE_ERROR(read_model_config(write_text(dir, "[1, 2]")), Status::invalid_argument, "array", "not an object");
  GLQ_REQUIRE_ERROR(read_model_config(write_text(dir, "4096")), Status::invalid_argument, "not an object");
  // nlohmann::json reports a number beyond a double as out_of_range, not parse_error (found by fuzz_model_config).
  const std::string overflow = write_text(dir, "{\"hidden_size\": 1e400}");
  GLQ_REQUIRE_ERROR(read_model_config(overflow), Status::invalid_argument, overflow, "not JSON", "1e400");
}

TEST_CASE("config errors: each missing size is named", "[models][errors]") {
  TempDir dir;
  for (const char* key : {"hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers"}) {
    json config = llama_like();
    config.erase(key);
    INFO("without " << key);
    GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument,
                      "'" + std::string(key) + "' is missing", dir.file("config.json"));
    config[key] = nullptr;
    GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument,
                      "'" + std::string(key) + "' is missing");
  }
}

TEST_CASE("config errors: sizes of the wrong type, zero, negative or absurd", "[models][errors]") {
  TempDir dir;
  for (const char* key : {"hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads",
                          "num_hidden_layers", "head_dim"}) {
    INFO("key " << key);
    for (const json& bad : {json("4096"), json(4096.5), json(64.0), json(true), json::array({64}), json::object()}) {
      json config = llama_like();
      config[key] = bad;
      GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument,
                        "'" + std::string(key) + "'", "not an integer");
    }
    for (const json& bad : {json(0), json(-8)}) {
      json config = llama_like();
      config[key] = bad;
      GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument,
                        "'" + std::string(key) + "'", bad.dump(), "positive");
    }
    for (const json& bad : {json(int64_t(1) << 40), json(uint64_t(18446744073709551615u))}) {
      json config = llama_like();
      config[key] = bad;
      GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument,
                        "'" + std::string(key) + "'", "more than");
    }
  }
  json wide = llama_like(8192, 8192, 8192, 8192, 1);
  wide["head_dim"] = 1024;
  GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, wide)), Status::invalid_argument, "num_attention_heads",
                    "head_dim", "more than");
}

TEST_CASE("config errors: heads that do not divide", "[models][errors]") {
  TempDir dir;
  json config = llama_like(256, 688, 8, 3, 2);
  GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument,
                    "'num_attention_heads' 8 is not a multiple of 'num_key_value_heads' 3");
  config = llama_like(256, 688, 4, 8, 2);  // more kv heads than heads
  GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument, "num_key_value_heads");
  config = llama_like(250, 688, 8, 2, 2);
  GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, config)), Status::invalid_argument,
                    "'hidden_size' 250 is not a multiple of 'num_attention_heads' 8", "head_dim");
  config["head_dim"] = 32;  // an explicit head_dim needs no division
  CHECK(read_model_config(write_config(dir, config)).linears[0].out_features == 256);
}

TEST_CASE("config errors: mistyped flags, names and sections", "[models][errors]") {
  TempDir dir;
  const auto with = [&](const std::string& key, const json& value) {
    json config = llama_like();
    config[key] = value;
    return write_config(dir, config);
  };
  GLQ_REQUIRE_ERROR(read_model_config(with("attention_bias", "yes")), Status::invalid_argument, "'attention_bias'",
                    "not true or false");
  GLQ_REQUIRE_ERROR(read_model_config(with("mlp_bias", 1)), Status::invalid_argument, "'mlp_bias'", "boolean");
  GLQ_REQUIRE_ERROR(read_model_config(with("model_type", 3)), Status::invalid_argument, "'model_type'", "not a string");
  GLQ_REQUIRE_ERROR(read_model_config(with("quantization_config", "glq")), Status::invalid_argument,
                    "'quantization_config'", "not a JSON object");
  GLQ_REQUIRE_ERROR(read_model_config(with("quantization_config", {{"quant_method", 2}})), Status::invalid_argument,
                    "'quantization_config.quant_method'", "not a string");
  GLQ_REQUIRE_ERROR(read_model_config(with("quantization_config", {{"quant_method", "glq"}, {"block_diagonal", "no"}})),
                    Status::invalid_argument, "'quantization_config.block_diagonal'");
  json nested = {{"text_config", "llama"}};
  GLQ_REQUIRE_ERROR(read_model_config(write_config(dir, nested)), Status::invalid_argument, "'text_config'",
                    "not a JSON object");
}

TEST_CASE("config errors: layer_bpw of the wrong shape, bpw, role or layer", "[models][errors]") {
  TempDir dir;
  const auto with_layer_bpw = [&](const json& layer_bpw) {
    json config = llama_like();
    config["quantization_config"] = {{"quant_method", "glq"}, {"codebook", "e8p"}, {"layer_bpw", layer_bpw}};
    return write_config(dir, config);
  };
  GLQ_REQUIRE_ERROR(read_model_config(with_layer_bpw(json::array({2, 2}))), Status::invalid_argument,
                    "'quantization_config.layer_bpw'", "not a JSON object");
  for (const json& bad : {json(1), json(9), json(0), json(-2), json(2.5), json("2"), json(nullptr)}) {
    INFO("bpw " << bad.dump());
    GLQ_REQUIRE_ERROR(read_model_config(with_layer_bpw({{"model.layers.0.self_attn.q_proj", bad}})),
                      Status::invalid_argument, "model.layers.0.self_attn.q_proj", "2..8", "layer_bpw");
  }
  GLQ_REQUIRE_ERROR(read_model_config(with_layer_bpw({{"model.layers.0.self_attn.qkv_proj", 2}})),
                    Status::invalid_argument, "model.layers.0.self_attn.qkv_proj", "'qkv_proj'", "checkpoint folder");
  GLQ_REQUIRE_ERROR(read_model_config(with_layer_bpw({{"model.layers.4.mlp.up_proj", 2}})), Status::invalid_argument,
                    "model.layers.4.mlp.up_proj", "'num_hidden_layers' is 4");
  GLQ_REQUIRE_ERROR(read_model_config(with_layer_bpw({{"model.layers.99999999999999999999.mlp.up_proj", 2}})),
                    Status::invalid_argument, "'num_hidden_layers' is 4");
  CHECK(read_model_config(with_layer_bpw({{"model.layers.3.mlp.up_proj", 4}})).linears.size() == 1);
}

TEST_CASE("config errors: a file far too large for a config", "[models][errors]") {
  TempDir dir;
  const std::string path = dir.file("config.json");
  {
    std::ofstream out(path);
    out << "{\"pad\": \"";
    out << std::string(size_t(17) << 20, 'x');
    out << "\"}";
  }
  GLQ_REQUIRE_ERROR(read_model_config(path), Status::invalid_argument, path, "bytes");
}

TEST_CASE("linears that read one input are grouped per layer, each role once", "[models][groups]") {
  auto linear = [](const std::string& name) { return ModelLinear{name, 4096, 1024, 2, false, 1}; };
  // Two layers of a checkpoint, layer 1 listed before layer 0's v, and a repeated k of layer 0.
  const std::vector<ModelLinear> linears = {
      linear("model.layers.0.self_attn.q_proj"), linear("model.layers.0.self_attn.k_proj"),
      linear("model.layers.1.self_attn.q_proj"), linear("model.layers.0.self_attn.v_proj"),
      linear("model.layers.0.self_attn.k_proj"), linear("model.layers.0.self_attn.o_proj"),
      linear("model.layers.0.mlp.gate_proj"),    linear("model.layers.0.mlp.up_proj")};
  const std::vector<std::vector<ModelLinear>> parts = group_by_input(linears);
  std::vector<std::vector<std::string>> names;
  for (const std::vector<ModelLinear>& part : parts) {
    names.emplace_back();
    for (const ModelLinear& l : part) names.back().push_back(linear_role(l.name));
  }
  const std::vector<std::vector<std::string>> expected = {
      {"q_proj", "k_proj", "v_proj"}, {"q_proj"}, {"k_proj"}, {"o_proj"}, {"gate_proj", "up_proj"}};
  CHECK(names == expected);
  CHECK(is_whole_group(parts[0]));
  CHECK_FALSE(is_whole_group(parts[1]));
  CHECK_FALSE(is_whole_group(parts[3]));
  CHECK(is_whole_group(parts[4]));
  // A config's linears are bare roles: one layer.
  const ModelShapes llama = read_model_config(kModels + "/llama-3-8b.json");
  CHECK(group_by_input(llama.linears).size() == 4);
}
