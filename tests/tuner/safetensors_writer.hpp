// Writes real safetensors files for tests: an 8-byte little-endian header length, the JSON header
// (padded with spaces to 8 bytes, as the reference writer does), then the tensors back to back.
// Also the GLQ tensor set of one linear (FORMAT.md section 7) and raw files for hostile headers.
// Header-only and free of Catch2 and of glqjit's libraries, so any test program (or a generator of
// fixtures for a Python loader) can include it.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace glqjit::test {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // "I64", "F16", "BF16", "F32", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // little-endian bytes; empty: zeros of the tensor's size
};

inline uint64_t safetensors_dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, uint64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
  };
  const auto found = sizes.find(dtype);
  if (found == sizes.end()) throw std::invalid_argument("safetensors_writer: unknown dtype " + dtype);
  return found->second;
}

inline uint64_t safetensors_tensor_bytes(const SafetensorsTensor& tensor) {
  uint64_t elements = 1;
  for (int64_t dim : tensor.shape) elements *= uint64_t(dim);
  return elements * safetensors_dtype_bytes(tensor.dtype);
}

// The header of `tensors` laid out back to back in the given order.
inline nlohmann::json safetensors_header(const std::vector<SafetensorsTensor>& tensors,
                                         const std::map<std::string, std::string>& metadata = {{"format", "pt"}}) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsTensor& tensor : tensors) {
    const uint64_t bytes = safetensors_tensor_bytes(tensor);
    header[tensor.name] = {
        {"dtype", tensor.dtype}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  return header;
}

// Writes `header_text` and `data` as they are, with `claimed_header_bytes` in the length field when
// given (else the true length): the way to make truncated or lying files.
inline void write_safetensors_raw(const std::string& path, const std::string& header_text, const std::string& data,
                                  std::optional<uint64_t> claimed_header_bytes = std::nullopt) {
  const uint64_t length = claimed_header_bytes.value_or(header_text.size());
  char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = char(length >> (8 * i) & 0xff);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(length_bytes, 8);
  out.write(header_text.data(), std::streamsize(header_text.size()));
  out.write(data.data(), std::streamsize(data.size()));
  if (!out) throw std::runtime_error("safetensors_writer: cannot write " + path);
}

inline void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {{"format", "pt"}}) {
  std::string header_text = safetensors_header(tensors, metadata).dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string data;
  for (const SafetensorsTensor& tensor : tensors) {
    const uint64_t bytes = safetensors_tensor_bytes(tensor);
    if (tensor.data.empty()) {
      data.append(bytes, '\0');
    } else if (tensor.data.size() == bytes) {
      data.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
    } else {
      throw std::invalid_argument("safetensors_writer: tensor " + tensor.name + " has " +
                                  std::to_string(tensor.data.size()) + " bytes of data but its shape needs " +
                                  std::to_string(bytes));
    }
  }
  write_safetensors_raw(path, header_text, data);
}

struct GlqLinearOptions {
  bool with_bias = false;
  std::string bias_dtype = "BF16";
  bool legacy_single_block = false;  // pad each side to a power of two (block_diagonal: false)
};

// Padded sizes of FORMAT.md section 5, written out here so the writer needs no glqjit library.
inline int64_t glq_padded(int64_t features, int64_t tile, bool legacy_single_block) {
  if (!legacy_single_block) return (features + tile - 1) / tile * tile;
  int64_t padded = tile;
  while (padded < features) padded *= 2;
  return padded;
}

// One quantized linear's tensors (FORMAT.md sections 4-7): zero codes, SU and SV of +1, Wscale
// 1/sqrt(n_pad), the nominal residual scales, and a zero bias when asked for.
inline std::vector<SafetensorsTensor> glq_linear_tensors(const std::string& prefix, int64_t in_features,
                                                         int64_t out_features, int bpw,
                                                         const GlqLinearOptions& options = {}) {
  if (bpw < 2 || bpw > 8) throw std::invalid_argument("safetensors_writer: bpw must be 2..8");
  const int64_t n_pad = glq_padded(in_features, 64, options.legacy_single_block);
  const int64_t m_pad = glq_padded(out_features, 16, options.legacy_single_block);
  const auto fp16_ones = [](int64_t count) {
    std::vector<uint8_t> bytes;
    for (int64_t i = 0; i < count; ++i) bytes.insert(bytes.end(), {0x00, 0x3c});  // 0x3c00 = +1, little-endian
    return bytes;
  };
  const auto fp32_scalar = [](float value) {
    std::vector<uint8_t> bytes(4);
    std::memcpy(bytes.data(), &value, 4);  // the hosts that run the tests are little-endian
    return bytes;
  };
  std::vector<SafetensorsTensor> tensors;
  const int e8p_stages = bpw / 2;
  double residual_product = 1.0;
  for (int stage = 0; stage < e8p_stages + bpw % 2; ++stage) {
    const bool e8p = stage < e8p_stages;
    const std::string number = stage == 0 ? "" : std::to_string(stage + 1);
    if (e8p) {
      tensors.push_back({prefix + ".Qidxs" + number + "_e8p", "I64", {m_pad / 16, n_pad / 64, 8, 4}, {}});
    } else {
      tensors.push_back({prefix + ".Qidxs" + number + "_e81b", "I64", {m_pad, n_pad / 64}, {}});
    }
    if (stage > 0) {
      residual_product *= e8p ? 3.45 : 2.04;
      const std::string scale = stage == 1 ? "inv_resid_scale" : "inv_resid_scale" + std::to_string(stage);
      tensors.push_back({prefix + "." + scale, "F32", {}, fp32_scalar(float(1.0 / residual_product))});
    }
  }
  tensors.push_back({prefix + ".SU", "F16", {m_pad}, fp16_ones(m_pad)});
  tensors.push_back({prefix + ".SV", "F16", {n_pad}, fp16_ones(n_pad)});
  tensors.push_back({prefix + ".Wscale", "F32", {}, fp32_scalar(float(1.0 / std::sqrt(double(n_pad))))});
  if (options.with_bias) tensors.push_back({prefix + ".bias", options.bias_dtype, {out_features}, {}});
  return tensors;
}

}  // namespace glqjit::test
