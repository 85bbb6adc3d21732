#include "tuner/checkpoint.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "format/geometry.hpp"
#include "format/recipe.hpp"
#include "glqjit/error.hpp"
#include "tuner/json_value_text.hpp"
#include "tuner/safetensors_header.hpp"

namespace glqjit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// An index lists a few thousand tensor names; a file this large is something else.
constexpr std::uintmax_t kMaxIndexBytes = 100'000'000;
// FORMAT.md section 7 numbers later stages 2, 3, 4 after stage 0's Qidxs_e8p.
constexpr size_t kMaxStages = 4;

constexpr std::string_view kReExport = "re-export this checkpoint with the GLQ quantizer";

[[noreturn]] void fail(const std::string& where, const std::string& problem) {
  throw Error(Status::invalid_argument, fmt::format("{}: {}", where, problem));
}


// Filesystem queries that answer false instead of throwing: a path that cannot be read is then
// reported by the open or the listing that follows, with its own message.
bool is_file(const fs::path& path) {
  std::error_code ignored;
  return fs::is_regular_file(path, ignored);
}

bool is_folder(const fs::path& path) {
  std::error_code ignored;
  return fs::is_directory(path, ignored);
}

bool path_exists(const fs::path& path) {
  std::error_code ignored;
  return fs::exists(path, ignored);
}

json read_index(const fs::path& index) {
  const std::string where = fmt::format("safetensors index {}", index.string());
  std::error_code error;
  const std::uintmax_t bytes = fs::file_size(index, error);
  std::ifstream in(index, std::ios::binary);
  if (error || !in) fail(where, "cannot be opened; check that it can be read");
  if (bytes > kMaxIndexBytes) {
    fail(where, fmt::format("is {} bytes, far more than an index holds; {}", bytes, kCopyAgain));
  }
  try {
    return json::parse(in);
  } catch (const json::exception& parse_error) {  // out_of_range for a number beyond a double
    fail(where, fmt::format("is not JSON ({}); {}", parse_error.what(), kCopyAgain));
  }
}

// Reads every safetensors header of the folder: the shards an index lists, else model.safetensors,
// else every *.safetensors file.
TensorTable read_checkpoint_tensors(const fs::path& folder) {
  TensorTable table;
  const fs::path index_path = folder / "model.safetensors.index.json";
  if (is_file(index_path)) {
    const std::string where = fmt::format("safetensors index {}", index_path.string());
    const json index = read_index(index_path);
    const json* weight_map = index.is_object() && index.contains("weight_map") ? &index["weight_map"] : nullptr;
    if (weight_map == nullptr || !weight_map->is_object()) {
      fail(where, fmt::format("has no 'weight_map' object from tensor names to shard files; {}", kCopyAgain));
    }
    std::vector<std::string> shards;
    for (const auto& [tensor, shard] : weight_map->items()) {
      const std::string shard_name = shard.is_string() ? shard.get<std::string>() : "";
      if (shard_name.empty() || shard_name == "." || shard_name == ".." || shard_name.find('/') != std::string::npos) {
        fail(where, fmt::format("puts tensor '{}' in {}, which is not the name of a file in the checkpoint folder; {}",
                                tensor, shown(shard), kCopyAgain));
      }
      if (std::find(shards.begin(), shards.end(), shard_name) == shards.end()) shards.push_back(shard_name);
    }
    for (const std::string& shard : shards) {
      if (!is_file(folder / shard)) {
        fail(where, fmt::format("lists shard '{}', which is not in the folder; copy the missing shard there", shard));
      }
      read_safetensors_header(folder / shard, table);
    }
    for (const auto& [tensor, shard] : weight_map->items()) {
      const auto found = table.find(tensor);
      const std::string expected_file = (folder / shard.get<std::string>()).string();
      if (found == table.end() || found->second.file != expected_file) {
        fail(where, fmt::format("puts tensor '{}' in '{}', but that shard's header has no such tensor; the index and "
                                "the shards come from different exports: {}",
                                tensor, shard.get<std::string>(), kReExport));
      }
    }
    return table;
  }
  if (is_file(folder / "model.safetensors")) {
    read_safetensors_header(folder / "model.safetensors", table);
    return table;
  }
  std::vector<fs::path> files;
  std::error_code error;
  for (fs::directory_iterator entry(folder, error), end; !error && entry != end; entry.increment(error)) {
    if (entry->path().extension() == ".safetensors" && is_file(entry->path())) files.push_back(entry->path());
  }
  if (error) {
    fail(fmt::format("checkpoint {}", folder.string()),
         fmt::format("cannot be listed ({}); check the folder's permissions", error.message()));
  }
  if (files.empty()) {
    fail(fmt::format("checkpoint {}", folder.string()),
         "has no model.safetensors, no model.safetensors.index.json and no other *.safetensors file; pass the folder "
         "that holds the GLQ checkpoint's weights");
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) read_safetensors_header(file, table);
  return table;
}

// Orders "layers.2" before "layers.10", so the list reads in model order.
bool natural_less(const std::string& a, const std::string& b) {
  const auto is_digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      size_t i_end = i, j_end = j;
      while (i_end < a.size() && is_digit(a[i_end])) ++i_end;
      while (j_end < b.size() && is_digit(b[j_end])) ++j_end;
      const std::string_view a_number = std::string_view(a).substr(i, i_end - i);
      const std::string_view b_number = std::string_view(b).substr(j, j_end - j);
      if (a_number.size() != b_number.size()) return a_number.size() < b_number.size();
      if (a_number != b_number) return a_number < b_number;
      i = i_end, j = j_end;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j || (a.size() - i == b.size() - j && a < b);
}

std::string stage_leaf(size_t stage, StageKind kind) {
  return fmt::format("Qidxs{}_{}", stage == 0 ? "" : std::to_string(stage + 1),
                     kind == StageKind::e8p ? "e8p" : "e81b");
}

std::string scale_leaf(size_t stage) {
  return stage == 1 ? "inv_resid_scale" : fmt::format("inv_resid_scale{}", stage);
}

std::string stage_list(const std::vector<StageKind>& stages) {
  std::vector<std::string_view> names;
  for (StageKind kind : stages) names.push_back(kind == StageKind::e8p ? "E8P" : "E81B");
  return fmt::format("[{}]", fmt::join(names, ", "));
}

// The stage tensors of one prefix, by stage (0 = Qidxs_e8p).
using StageKinds = std::array<std::optional<StageKind>, kMaxStages>;

// The stage and codebook of a leaf name such as "Qidxs3_e81b"; the caller knows it starts with "Qidxs".
std::optional<std::pair<size_t, StageKind>> parse_stage_leaf(std::string_view leaf) {
  const size_t underscore = leaf.find('_');
  if (underscore == std::string_view::npos) return std::nullopt;
  const std::string_view number = leaf.substr(5, underscore - 5);
  const std::string_view codebook = leaf.substr(underscore + 1);
  size_t stage = 0;
  if (number.size() == 1 && number[0] >= '2' && number[0] < char('1' + kMaxStages)) {
    stage = size_t(number[0] - '1');
  } else if (!number.empty()) {
    return std::nullopt;
  }
  if (codebook == "e8p") return std::pair{stage, StageKind::e8p};
  if (codebook == "e81b") return std::pair{stage, StageKind::e81b};
  return std::nullopt;
}

std::string role_names(const std::vector<ModelLinear>& roles) {
  std::string names;
  for (const ModelLinear& role : roles) names += (names.empty() ? "" : ", ") + role.name;
  return names;
}

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// Checks one GLQ tensor set against FORMAT.md sections 4-7 and sizes it.
class LinearReader {
 public:
  LinearReader(const fs::path& folder, const TensorTable& table, const ModelConfig& config, bool legacy)
      : where_(fmt::format("checkpoint {}", folder.string())),
        config_path_((folder / "config.json").string()),
        table_(table),
        config_(config),
        legacy_(legacy) {}

  ModelLinear read(const std::string& prefix, const StageKinds& kinds) const {
    const std::vector<StageKind> stages = stage_sequence(prefix, kinds);
    const int bpw = bpw_of(prefix, stages);

    const std::string stage0 = prefix + "." + stage_leaf(0, StageKind::e8p);
    const TensorHeader& first = tensor(stage0, stage0);
    expect_dtype(stage0, first, {"I64"});
    if (first.shape.size() != 4 || first.shape[2] != 8 || first.shape[3] != 4 || first.shape[0] < 1 ||
        first.shape[1] < 1 || first.shape[0] > kMaxFeatures / 16 || first.shape[1] > kMaxFeatures / 64) {
      fail(where_, fmt::format("tensor '{}' (in {}) has shape {}, but an E8P stage is (m_pad/16, n_pad/64, 8, 4) with "
                               "padded sizes of 1..{} (FORMAT.md section 6); {}",
                               stage0, first.file, shape_text(first.shape), kMaxFeatures, kReExport));
    }
    const int64_t m_pad = first.shape[0] * 16, n_pad = first.shape[1] * 64;
    const std::string padding = fmt::format("m_pad {} and n_pad {} (from {})", m_pad, n_pad, stage0);

    for (size_t stage = 1; stage < stages.size(); ++stage) {
      const std::string name = prefix + "." + stage_leaf(stage, stages[stage]);
      const TensorHeader& codes = tensor(name, stage0);
      expect_dtype(name, codes, {"I64"});
      if (stages[stage] == StageKind::e8p) {
        expect_shape(name, codes, {m_pad / 16, n_pad / 64, 8, 4}, "(m_pad/16, n_pad/64, 8, 4) for " + padding);
      } else {
        expect_shape(name, codes, {m_pad, n_pad / 64}, "(m_pad, n_pad/64) for " + padding);
      }
      const std::string scale = prefix + "." + scale_leaf(stage);
      expect_scalar(scale, tensor(scale, stage0, fmt::format("the scale of stage {}", stage + 1)));
    }
    for (size_t stage = stages.size(); stage < kMaxStages; ++stage) {
      const std::string stray = prefix + "." + scale_leaf(stage);
      if (const auto found = table_.find(stray); found != table_.end()) {
        fail(where_, fmt::format("tensor '{}' (in {}) is the scale of stage {}, but '{}' has only the stages {}; a "
                                 "stage tensor is missing or the scale is stray: {}",
                                 stray, found->second.file, stage + 1, prefix, stage_list(stages), kReExport));
      }
    }
    const std::string su = prefix + ".SU", sv = prefix + ".SV", wscale = prefix + ".Wscale";
    const TensorHeader& su_tensor = tensor(su, stage0);
    expect_dtype(su, su_tensor, {"F16"});
    expect_shape(su, su_tensor, {m_pad}, "(m_pad) for " + padding);
    const TensorHeader& sv_tensor = tensor(sv, stage0);
    expect_dtype(sv, sv_tensor, {"F16"});
    expect_shape(sv, sv_tensor, {n_pad}, "(n_pad) for " + padding);
    expect_scalar(wscale, tensor(wscale, stage0));

    ModelLinear linear;
    linear.name = prefix;
    linear.bpw = bpw;
    const std::optional<int64_t> bias_features = read_bias(prefix, m_pad);
    linear.has_bias = bias_features.has_value();
    size(linear, bias_features, m_pad, n_pad);
    return linear;
  }

 private:
  std::vector<StageKind> stage_sequence(const std::string& prefix, const StageKinds& kinds) const {
    size_t count = 0;
    for (size_t stage = 0; stage < kMaxStages; ++stage) {
      if (kinds[stage]) count = stage + 1;
    }
    std::vector<StageKind> stages;
    for (size_t stage = 0; stage < count; ++stage) {
      if (!kinds[stage]) {
        const std::string expected =
            stage == 0 ? prefix + ".Qidxs_e8p"
                       : fmt::format("{}.Qidxs{}_e8p or {}.Qidxs{}_e81b", prefix, stage + 1, prefix, stage + 1);
        fail(where_, fmt::format("'{}' has stage tensors up to stage {} but no {} (stage {}); the stages are "
                                 "incomplete: {}",
                                 prefix, count, expected, stage + 1, kReExport));
      }
      stages.push_back(*kinds[stage]);
    }
    return stages;
  }

  int bpw_of(const std::string& prefix, const std::vector<StageKind>& stages) const {
    for (int bpw = kMinBpw; bpw <= kMaxBpw; ++bpw) {
      if (recipe_for_bpw(bpw).stages == stages) return bpw;
    }
    fail(where_,
         fmt::format("the stage tensors of '{}' make the sequence {}, which is no recipe of FORMAT.md section 4 "
                     "(2 bpw: [E8P], 3: [E8P, E81B], 4: [E8P, E8P], ..., 8: 4 x E8P); {}",
                     prefix, stage_list(stages), kReExport));
  }

  // `what` says what the tensor is for, where its name does not.
  const TensorHeader& tensor(const std::string& name, const std::string& stage0, std::string_view what = "") const {
    const auto found = table_.find(name);
    if (found == table_.end()) {
      fail(where_, fmt::format("tensor '{}'{} is missing ({} is in {}); every quantized linear has its stage tensors, "
                               "their scales, SU, SV and Wscale (FORMAT.md section 7): {}",
                               name, what.empty() ? "" : fmt::format(" ({})", what), stage0, table_.at(stage0).file,
                               kReExport));
    }
    return found->second;
  }

  void expect_dtype(const std::string& name, const TensorHeader& tensor,
                    std::initializer_list<std::string_view> dtypes) const {
    if (std::find(dtypes.begin(), dtypes.end(), tensor.dtype) != dtypes.end()) return;
    fail(where_, fmt::format("tensor '{}' (in {}) is {}, but FORMAT.md section 7 stores it as {}; {}", name,
                             tensor.file, tensor.dtype, fmt::join(dtypes, " or "), kReExport));
  }

  void expect_shape(const std::string& name, const TensorHeader& tensor, const std::vector<int64_t>& shape,
                    const std::string& rule) const {
    if (tensor.shape == shape) return;
    fail(where_, fmt::format("tensor '{}' (in {}) has shape {}, but it must be {} = {} (FORMAT.md sections 6-7); {}",
                             name, tensor.file, shape_text(tensor.shape), rule, shape_text(shape), kReExport));
  }

  void expect_scalar(const std::string& name, const TensorHeader& tensor) const {
    expect_dtype(name, tensor, {"F32"});
    if (tensor.shape.empty() || tensor.shape == std::vector<int64_t>{1}) return;
    fail(where_, fmt::format("tensor '{}' (in {}) has shape {}, but it is an fp32 scalar (shape [] or [1]); {}", name,
                             tensor.file, shape_text(tensor.shape), kReExport));
  }

  std::optional<int64_t> read_bias(const std::string& prefix, int64_t m_pad) const {
    const std::string name = prefix + ".bias";
    const auto found = table_.find(name);
    if (found == table_.end()) return std::nullopt;
    const TensorHeader& bias = found->second;
    expect_dtype(name, bias, {"F16", "BF16", "F32"});
    if (bias.shape.size() != 1 || bias.shape[0] < 1 || bias.shape[0] > m_pad || padded_out(bias.shape[0]) != m_pad) {
      fail(where_, fmt::format("tensor '{}' (in {}) has shape {}, but a bias holds out_features values, which pad to "
                               "the m_pad {} of '{}.Qidxs_e8p'; {}",
                               name, bias.file, shape_text(bias.shape), m_pad, prefix, kReExport));
    }
    return bias.shape[0];
  }

  int64_t padded_out(int64_t out_features) const { return make_geometry(1, out_features, legacy_).m_pad; }

  // FORMAT.md section 5: the exact features come from the bias or from config.json by role, and must
  // pad to the tensors' sizes; a role config.json cannot size keeps its padded sizes only where no
  // linear of the model is padded at all.
  void size(ModelLinear& linear, std::optional<int64_t> bias_features, int64_t m_pad, int64_t n_pad) const {
    const size_t dot = linear.name.rfind('.');
    const std::string role = dot == std::string::npos ? linear.name : linear.name.substr(dot + 1);
    const auto by_role = std::find_if(config_.layer_linears.begin(), config_.layer_linears.end(),
                                      [&](const ModelLinear& known) { return known.name == role; });
    if (by_role == config_.layer_linears.end()) {
      const bool model_unpadded =
          !legacy_ &&
          std::all_of(config_.layer_linears.begin(), config_.layer_linears.end(), [](const ModelLinear& known) {
            return known.in_features % 64 == 0 && known.out_features % 16 == 0;
          });
      if (!model_unpadded) {
        fail(where_, fmt::format("'{}' has the role '{}', which {} cannot size (it sizes {}), and this model's "
                                 "sizes are padded, so its m_pad {} x n_pad {} may exceed the true features; give "
                                 "glq-tune this linear's shape explicitly",
                                 linear.name, role, config_path_, role_names(config_.layer_linears), m_pad, n_pad));
      }
      linear.in_features = n_pad;
      linear.out_features = bias_features.value_or(m_pad);
      return;
    }
    linear.in_features = by_role->in_features;
    linear.out_features = bias_features.value_or(by_role->out_features);
    const Geometry geometry = make_geometry(linear.in_features, linear.out_features, legacy_);
    if (geometry.m_pad != m_pad || geometry.n_pad != n_pad) {
      fail(where_, fmt::format("'{}' has tensors padded to m_pad {} x n_pad {}, but {} makes {} {} x {} (out x in{}), "
                               "which pads to {} x {}; this config.json is not the one the checkpoint was exported "
                               "with: put that one in the folder",
                               linear.name, m_pad, n_pad, config_path_, role, linear.out_features, linear.in_features,
                               bias_features ? ", out from the bias" : "", geometry.m_pad, geometry.n_pad));
    }
  }

  std::string where_;
  std::string config_path_;
  const TensorTable& table_;
  const ModelConfig& config_;
  bool legacy_;
};

// The GLQ part of config.json, which a checkpoint must have (FORMAT.md section 7).
const GlqQuantization& require_glq(const std::string& config_path, const ModelConfig& config) {
  const std::string where = fmt::format("model config {}", config_path);
  if (config.quant_method.empty()) {
    fail(where,
         "has no 'quantization_config.quant_method', so this folder is no GLQ checkpoint; quantize the model "
         "with GLQ first, or pass its config.json to glq-tune --model for the shapes alone");
  }
  if (!config.glq) {
    fail(where, fmt::format("has 'quantization_config.quant_method' \"{}\", but glqjit reads only \"glq\" checkpoints; "
                            "quantize the model with GLQ, or pass its config.json to glq-tune --model for the shapes "
                            "alone",
                            config.quant_method));
  }
  if (config.glq->codebook != "e8p") {
    fail(where, fmt::format("has 'quantization_config.codebook' \"{}\", but glqjit decodes only \"e8p\" (FORMAT.md "
                            "sections 2-3); {}",
                            config.glq->codebook, kReExport));
  }
  return *config.glq;
}

void check_layer_bpw(const std::string& config_path, const std::map<std::string, int>& layer_bpw,
                     const std::vector<ModelLinear>& linears) {
  const std::string where = fmt::format("model config {}", config_path);
  for (const ModelLinear& linear : linears) {
    const auto found = layer_bpw.find(linear.name);
    if (found == layer_bpw.end()) {
      fail(where, fmt::format("'quantization_config.layer_bpw' has no entry for layer '{}', whose tensors make it {} "
                              "bpw; add it, or use the config.json the checkpoint was exported with",
                              linear.name, linear.bpw));
    }
    if (found->second != linear.bpw) {
      fail(where, fmt::format("'quantization_config.layer_bpw' gives layer '{}' {} bpw, but its tensors make it {} "
                              "bpw; use the config.json the checkpoint was exported with",
                              linear.name, found->second, linear.bpw));
    }
  }
  for (const auto& [layer, bpw] : layer_bpw) {
    const bool present = std::any_of(linears.begin(), linears.end(),
                                     [&name = layer](const ModelLinear& l) { return l.name == name; });
    if (!present) {
      fail(where, fmt::format("'quantization_config.layer_bpw' gives layer '{}' {} bpw, but no tensor '{}.Qidxs_e8p' "
                              "is in the checkpoint; a shard is missing, or the config belongs to another export",
                              layer, bpw, layer));
    }
  }
}

std::string folder_name(const fs::path& folder) {
  std::error_code ignored;
  fs::path normal = fs::absolute(folder, ignored).lexically_normal();
  if (normal.filename().empty()) normal = normal.parent_path();
  return normal.empty() ? folder.string() : normal.filename().string();
}

}  // namespace

ModelShapes read_glq_checkpoint(const std::string& folder) {
  const fs::path root(folder);
  if (!is_folder(root)) {
    fail(fmt::format("checkpoint {}", folder),
         path_exists(root)
             ? "is a file, not a folder; pass the folder of a GLQ checkpoint, or a config.json with --model"
             : "there is no such folder; pass the folder of a GLQ checkpoint");
  }
  const std::string config_path = (root / "config.json").string();
  if (!path_exists(config_path)) {
    fail(fmt::format("checkpoint {}", folder),
         "has no config.json; a GLQ checkpoint keeps the model's config.json, "
         "with its quantization_config, beside the safetensors files");
  }
  const ModelConfig config = parse_model_config(config_path);
  const GlqQuantization& glq = require_glq(config_path, config);
  const bool legacy = !glq.block_diagonal.value_or(true);  // FORMAT.md section 5 marks legacy files with false

  const TensorTable table = read_checkpoint_tensors(root);
  std::map<std::string, StageKinds> stages_of;
  for (const auto& [name, tensor] : table) {
    const size_t dot = name.rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : name.substr(0, dot);
    const std::string leaf = name.substr(dot == std::string::npos ? 0 : dot + 1);
    if (leaf.rfind("Qidxs", 0) != 0) continue;
    const auto stage = parse_stage_leaf(leaf);
    if (!stage) {
      fail(fmt::format("checkpoint {}", folder),
           fmt::format("tensor '{}' (in {}) is no stage tensor of FORMAT.md section 7 (Qidxs_e8p, then Qidxs2..4 "
                       "with _e8p or _e81b); {}",
                       name, tensor.file, kReExport));
    }
    std::optional<StageKind>& kind = stages_of[prefix][stage->first];
    if (kind) {
      fail(fmt::format("checkpoint {}", folder),
           fmt::format("'{}' has both {} and {}, two codebooks for stage {}; {}", prefix,
                       stage_leaf(stage->first, StageKind::e8p), stage_leaf(stage->first, StageKind::e81b),
                       stage->first + 1, kReExport));
    }
    kind = stage->second;
  }
  if (stages_of.empty()) {
    fail(fmt::format("checkpoint {}", folder),
         "has no tensor named '*.Qidxs_e8p', so it holds no GLQ linear; pass the folder of a GLQ-quantized model");
  }

  std::vector<std::string> prefixes;
  for (const auto& entry : stages_of) prefixes.push_back(entry.first);
  std::sort(prefixes.begin(), prefixes.end(), natural_less);
  const LinearReader reader(root, table, config, legacy);
  ModelShapes shapes;
  shapes.name = folder_name(root);
  shapes.legacy_single_block = legacy;
  for (const std::string& prefix : prefixes) shapes.linears.push_back(reader.read(prefix, stages_of.at(prefix)));
  if (glq.layer_bpw) check_layer_bpw(config_path, *glq.layer_bpw, shapes.linears);
  return shapes;
}

}  // namespace glqjit
