#include "tuner/model_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "format/geometry.hpp"
#include "format/recipe.hpp"
#include "glqjit/error.hpp"
#include "tuner/json_value_text.hpp"

namespace glqjit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A config.json is a few kilobytes; a file this large is something else.
constexpr std::uintmax_t kMaxConfigBytes = std::uintmax_t(16) << 20;
// Far deeper than any published decoder (Llama-3-405B has 126 layers), and counts stay ints.
constexpr int64_t kMaxLayers = 100'000;

constexpr std::string_view kUseOwnConfig = "pass the model's own config.json (the one beside its weights)";

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw Error(Status::invalid_argument, fmt::format("model config {}: {}", path, problem));
}


std::string role_of(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

std::string role_names(const std::vector<ModelLinear>& roles) {
  std::string names;
  for (const ModelLinear& role : roles) names += (names.empty() ? "" : ", ") + role.name;
  return names;
}

std::string read_config_text(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) fail(path, fmt::format("there is no such file; {}", kUseOwnConfig));
  if (fs::is_directory(status)) {
    fail(path,
         "is a folder; pass the config.json inside it, or pass a GLQ checkpoint folder to glq-tune without "
         "--model");
  }
  const std::uintmax_t size = fs::file_size(path, error);
  if (!error && size > kMaxConfigBytes) {
    fail(path, fmt::format("is {} bytes, far more than a config.json holds; {}", size, kUseOwnConfig));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, fmt::format("cannot be opened; check its permissions, or {}", kUseOwnConfig));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The keys of one JSON object, named in messages as the file nests them ("text_config.hidden_size").
class Keys {
 public:
  Keys(std::string path, const json& object, std::string prefix)
      : path_(std::move(path)), object_(object), prefix_(std::move(prefix)) {}

  bool has(std::string_view key) const { return lookup(key) != nullptr; }

  // A positive integer of at most `max`; `what_for` says why the file needs it.
  int64_t size(std::string_view key, int64_t max, std::string_view what_for) const {
    const json* value = lookup(key);
    if (value == nullptr) {
      fail(path_, fmt::format("'{}' is missing; {}. Add it, or {}", name(key), what_for, kUseOwnConfig));
    }
    return checked_size(key, *value, max);
  }

  std::optional<int64_t> optional_size(std::string_view key, int64_t max) const {
    const json* value = lookup(key);
    if (value == nullptr) return std::nullopt;
    return checked_size(key, *value, max);
  }

  std::optional<bool> optional_flag(std::string_view key) const {
    const json* value = lookup(key);
    if (value == nullptr) return std::nullopt;
    if (!value->is_boolean()) {
      fail(path_, fmt::format("'{}' is {}, not true or false; write it as a JSON boolean", name(key), shown(*value)));
    }
    return value->get<bool>();
  }

  std::string text(std::string_view key) const {
    const json* value = lookup(key);
    if (value == nullptr) return "";
    if (!value->is_string()) {
      fail(path_, fmt::format("'{}' is {}, not a string; write it as a JSON string", name(key), shown(*value)));
    }
    return value->get<std::string>();
  }

  // A nested object, or nullptr when the key is absent.
  const json* object(std::string_view key) const {
    const json* value = lookup(key);
    if (value != nullptr && !value->is_object()) {
      fail(path_, fmt::format("'{}' is {}, not a JSON object; {}", name(key), shown(*value), kUseOwnConfig));
    }
    return value;
  }

  std::string name(std::string_view key) const { return prefix_ + std::string(key); }
  const std::string& path() const { return path_; }

 private:
  // A null value counts as absent: HF writes `"head_dim": null` for "the default".
  const json* lookup(std::string_view key) const {
    const auto found = object_.find(key);
    return found == object_.end() || found->is_null() ? nullptr : &*found;
  }

  int64_t checked_size(std::string_view key, const json& value, int64_t max) const {
    if (!value.is_number_integer()) {
      fail(path_, fmt::format("'{}' is {}, not an integer; write it as a whole JSON number", name(key), shown(value)));
    }
    const bool too_large =
        value.is_number_unsigned() ? value.get<uint64_t>() > uint64_t(max) : value.get<int64_t>() > max;
    if (too_large) {
      fail(path_,
           fmt::format("'{}' is {}, more than the {} glqjit accepts; {}", name(key), shown(value), max, kUseOwnConfig));
    }
    const int64_t size = value.get<int64_t>();
    if (size < 1) {
      fail(path_, fmt::format("'{}' is {}, but it must be a positive integer; {}", name(key), size, kUseOwnConfig));
    }
    return size;
  }

  std::string path_;
  const json& object_;
  std::string prefix_;
};

// Biases as the Hugging Face model classes build them: Qwen2 always has q/k/v biases and no other,
// the others follow attention_bias (q, k, v, o) and mlp_bias (gate, up, down).
std::vector<ModelLinear> decoder_layer_linears(const Keys& keys, const std::string& model_type) {
  constexpr std::string_view kDecoderKey = "a decoder config (Llama, Mistral, Qwen, SmolLM3, Gemma) has it";
  const int64_t hidden = keys.size("hidden_size", kMaxFeatures, kDecoderKey);
  const int64_t intermediate = keys.size("intermediate_size", kMaxFeatures, kDecoderKey);
  const int64_t heads = keys.size("num_attention_heads", kMaxFeatures, kDecoderKey);
  const int64_t kv_heads = keys.optional_size("num_key_value_heads", kMaxFeatures).value_or(heads);
  if (heads % kv_heads != 0) {
    fail(keys.path(), fmt::format("'{}' {} is not a multiple of '{}' {}, so the heads do not group; check both values "
                                  "against the model's card",
                                  keys.name("num_attention_heads"), heads, keys.name("num_key_value_heads"), kv_heads));
  }
  const std::optional<int64_t> given_head_dim = keys.optional_size("head_dim", kMaxFeatures);
  if (!given_head_dim && hidden % heads != 0) {
    fail(keys.path(), fmt::format("'{}' {} is not a multiple of '{}' {} and there is no 'head_dim'; add the model's "
                                  "head_dim",
                                  keys.name("hidden_size"), hidden, keys.name("num_attention_heads"), heads));
  }
  const int64_t head_dim = given_head_dim.value_or(hidden / heads);
  const int64_t attention_width = heads * head_dim;  // both at most 2^20, so no overflow
  if (attention_width > kMaxFeatures) {
    fail(keys.path(),
         fmt::format("'{}' {} x head_dim {} = {} features, more than the {} glqjit accepts; {}",
                     keys.name("num_attention_heads"), heads, head_dim, attention_width, kMaxFeatures, kUseOwnConfig));
  }
  const int64_t kv_width = kv_heads * head_dim;

  const bool qwen2 = model_type == "qwen2" || model_type.rfind("qwen2_", 0) == 0;
  const bool attention_bias = keys.optional_flag("attention_bias").value_or(false);
  const bool mlp_bias = keys.optional_flag("mlp_bias").value_or(false);
  const bool qkv_bias = qwen2 || attention_bias;
  const bool o_bias = !qwen2 && attention_bias;
  return {
      {"q_proj", hidden, attention_width, 0, qkv_bias, 1}, {"k_proj", hidden, kv_width, 0, qkv_bias, 1},
      {"v_proj", hidden, kv_width, 0, qkv_bias, 1},        {"o_proj", attention_width, hidden, 0, o_bias, 1},
      {"gate_proj", hidden, intermediate, 0, mlp_bias, 1}, {"up_proj", hidden, intermediate, 0, mlp_bias, 1},
      {"down_proj", intermediate, hidden, 0, mlp_bias, 1},
  };
}

std::map<std::string, int> read_layer_bpw(const std::string& path, const json& layer_bpw) {
  std::map<std::string, int> bpw_of;
  for (const auto& [layer, value] : layer_bpw.items()) {
    // A huge unsigned value wraps to another int64 than 2..8, so it is rejected too.
    const int64_t bpw = value.is_number_integer() ? value.get<int64_t>() : 0;
    if (bpw < kMinBpw || bpw > kMaxBpw) {
      fail(path, fmt::format("'quantization_config.layer_bpw' gives layer '{}' the bpw {}, but a GLQ bpw is an integer "
                             "{}..{} (FORMAT.md section 4); leave unquantized layers out of layer_bpw",
                             layer, shown(value), kMinBpw, kMaxBpw));
    }
    bpw_of[layer] = int(bpw);
  }
  return bpw_of;
}

GlqQuantization read_glq_quantization(const Keys& quantization) {
  GlqQuantization glq;
  glq.codebook = quantization.text("codebook");
  glq.block_diagonal = quantization.optional_flag("block_diagonal");
  if (const json* layer_bpw = quantization.object("layer_bpw")) {
    glq.layer_bpw = read_layer_bpw(quantization.path(), *layer_bpw);
  }
  return glq;
}

// The decoder layer a name such as "model.layers.12.mlp.up_proj" belongs to, if it names one.
std::optional<int64_t> layer_index(const std::string& name) {
  constexpr std::string_view kLayers = "layers.";
  for (size_t at = name.find(kLayers); at != std::string::npos; at = name.find(kLayers, at + 1)) {
    if (at != 0 && name[at - 1] != '.') continue;
    size_t end = at + kLayers.size();
    int64_t index = 0;
    while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) {
      index = std::min(index * 10 + (name[end++] - '0'), kMaxLayers);  // saturates: any larger index is as wrong
    }
    if (end > at + kLayers.size() && (end == name.size() || name[end] == '.')) return index;
  }
  return std::nullopt;
}

}  // namespace

ModelConfig parse_model_config(const std::string& config_path) {
  return parse_model_config_text(read_config_text(config_path), config_path);
}

ModelConfig parse_model_config_text(std::string_view text, const std::string& config_path) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& parse_error) {  // out_of_range for a number beyond a double
    fail(config_path, fmt::format("is not JSON ({}); {}", parse_error.what(), kUseOwnConfig));
  }
  if (!root.is_object()) {
    fail(config_path, fmt::format("holds a JSON {}, not an object of keys; {}", root.type_name(), kUseOwnConfig));
  }
  const Keys top(config_path, root, "");
  ModelConfig config;
  config.model_type = top.text("model_type");

  // Gemma-3 and other multimodal configs keep the decoder's sizes under text_config.
  const json* text_config = top.has("hidden_size") ? nullptr : top.object("text_config");
  const Keys sizes = text_config != nullptr ? Keys(config_path, *text_config, "text_config.") : top;
  if (config.model_type.empty() && text_config != nullptr) config.model_type = sizes.text("model_type");
  config.layer_linears = decoder_layer_linears(sizes, config.model_type);
  config.num_hidden_layers =
      int(sizes.size("num_hidden_layers", kMaxLayers, "it gives how many decoder layers have each linear"));

  if (const json* quantization = top.object("quantization_config")) {
    const Keys quantization_keys(config_path, *quantization, "quantization_config.");
    config.quant_method = quantization_keys.text("quant_method");
    if (config.quant_method == "glq") config.glq = read_glq_quantization(quantization_keys);
  }
  return config;
}

ModelShapes read_model_config(const std::string& config_path) {
  return model_shapes(parse_model_config(config_path), config_path);
}

ModelShapes model_shapes(const ModelConfig& config, const std::string& config_path) {
  ModelShapes shapes;
  shapes.name = config.model_type;
  if (shapes.name.empty()) {
    std::error_code ignored;
    shapes.name = fs::absolute(config_path, ignored).parent_path().filename().string();
  }

  if (!config.glq || !config.glq->layer_bpw) {
    for (ModelLinear linear : config.layer_linears) {
      linear.count = config.num_hidden_layers;
      shapes.linears.push_back(linear);
    }
    return shapes;
  }
  const std::vector<ModelLinear>& roles = config.layer_linears;
  std::map<std::pair<size_t, int>, int> layers_of;  // (role, bpw) -> count, in role order then bpw
  for (const auto& [layer, bpw] : *config.glq->layer_bpw) {
    const std::string role = role_of(layer);
    const auto found =
        std::find_if(roles.begin(), roles.end(), [&](const ModelLinear& known) { return known.name == role; });
    if (found == roles.end()) {
      fail(config_path, fmt::format("'quantization_config.layer_bpw' names layer '{}', whose role '{}' is none of {}, "
                                    "so this config cannot size it; pass the checkpoint folder instead, whose tensors "
                                    "give its shape",
                                    layer, role, role_names(roles)));
    }
    const std::optional<int64_t> index = layer_index(layer);
    if (index && *index >= config.num_hidden_layers) {
      fail(config_path, fmt::format("'quantization_config.layer_bpw' names layer '{}', but 'num_hidden_layers' is {}; "
                                    "this layer_bpw belongs to another model: {}",
                                    layer, config.num_hidden_layers, kUseOwnConfig));
    }
    ++layers_of[{size_t(found - roles.begin()), bpw}];
  }
  for (const auto& [role_and_bpw, count] : layers_of) {
    ModelLinear linear = roles[role_and_bpw.first];
    linear.bpw = role_and_bpw.second;
    linear.count = count;
    shapes.linears.push_back(linear);
  }
  return shapes;
}

std::vector<ModelLinear> distinct_shapes(const std::vector<ModelLinear>& linears) {
  std::vector<ModelLinear> merged;
  std::vector<std::vector<std::string>> roles_of_merged;
  for (const ModelLinear& linear : linears) {
    const auto same = std::find_if(merged.begin(), merged.end(), [&](const ModelLinear& other) {
      return other.in_features == linear.in_features && other.out_features == linear.out_features &&
             other.bpw == linear.bpw && other.has_bias == linear.has_bias;
    });
    const std::string role = role_of(linear.name);
    if (same == merged.end()) {
      merged.push_back(linear);
      merged.back().name = role;
      roles_of_merged.push_back({role});
      continue;
    }
    same->count += linear.count;
    std::vector<std::string>& roles = roles_of_merged[size_t(same - merged.begin())];
    if (std::find(roles.begin(), roles.end(), role) == roles.end()) {
      roles.push_back(role);
      same->name += "+" + role;
    }
  }
  return merged;
}

}  // namespace glqjit
