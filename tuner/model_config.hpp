// The quantized linears a model needs, read from a Hugging Face-style config.json (Llama,
// Mistral, Qwen2/Qwen3, SmolLM3, Gemma-style), so that glq-tune and glq-bench know which
// (shape, bpw) pairs to work on.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace glqjit {

struct ModelLinear {
  std::string name;  // "q_proj" from a config; the full tensor prefix from a checkpoint
  int64_t in_features = 0;
  int64_t out_features = 0;
  int bpw = 0;  // 0: the source does not say (no layer_bpw); the caller picks the bpw
  bool has_bias = false;
  int count = 1;  // how many layers of the model have this linear (decoder layers)
};

struct ModelShapes {
  std::string name;  // model_type or the folder's name
  std::vector<ModelLinear> linears;
  bool legacy_single_block = false;  // a checkpoint's `block_diagonal: false` (FORMAT.md section 5)
};

// Throws glqjit::Error(invalid_argument) naming the file, the key and what to do for a missing
// file, bad JSON, a missing or mistyped key, or sizes that make no linear.
//
// Without layer_bpw: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, each with
// count num_hidden_layers and bpw 0. With `"quantization_config": {"quant_method": "glq",
// "layer_bpw": {"model.layers.0.self_attn.q_proj": 2, ...}}` (an object from full layer names,
// whose last part is the role, to an integer bpw 2..8): only the named linears, with their bpw,
// one entry per (role, bpw) counted, so a uniform model gives seven entries. Unnamed linears are
// unquantized. The quantization_config of another quant_method is ignored. A config whose sizes
// sit under `text_config` (Gemma-3) is read from there.
ModelShapes read_model_config(const std::string& config_path);

// The GLQ part of config.json's quantization_config (FORMAT.md section 7), as the file has it.
struct GlqQuantization {
  std::string codebook;                                 // "" when absent
  std::optional<bool> block_diagonal;                   // nullopt when absent
  std::optional<std::map<std::string, int>> layer_bpw;  // full layer name -> bpw 2..8
};

// One config.json before its linears are grouped. read_glq_checkpoint sizes each tensor set by its
// role from layer_linears, so a config and a checkpoint of one model give the same shapes.
struct ModelConfig {
  std::string model_type;  // "" when the file has none
  int num_hidden_layers = 0;
  std::vector<ModelLinear> layer_linears;  // the seven of one decoder layer: bpw 0, count 1
  std::string quant_method;                // quantization_config.quant_method; "" without one
  std::optional<GlqQuantization> glq;      // only for quant_method "glq"
};

// Throws as read_model_config does.
ModelConfig parse_model_config(const std::string& config_path);
// The same from the file's text; config_path names the file in messages.
ModelConfig parse_model_config_text(std::string_view text, const std::string& config_path);

// What read_model_config makes of a parsed config (config_path names the file in messages, and
// the model after its folder when the config has no model_type); throws as read_model_config does.
ModelShapes model_shapes(const ModelConfig& config, const std::string& config_path);

// Linears of equal shape, bpw and bias merged into one entry whose count is the sum and whose name
// joins the distinct roles (the last part of each name) with '+', in first-seen order: what a
// tuner that works per shape needs from a per-layer list such as read_glq_checkpoint's.
std::vector<ModelLinear> distinct_shapes(const std::vector<ModelLinear>& linears);

}  // namespace glqjit
