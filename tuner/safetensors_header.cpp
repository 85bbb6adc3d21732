#include "tuner/safetensors_header.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>
#include <utility>

#include "glqjit/error.hpp"
#include "tuner/json_value_text.hpp"

namespace glqjit {
namespace {

using nlohmann::json;

// The safetensors reference loader refuses longer headers; refusing them before allocating keeps a
// hostile length from costing memory.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& where, const std::string& problem) {
  throw Error(Status::invalid_argument, fmt::format("{}: {}", where, problem));
}

std::optional<uint64_t> dtype_bytes(std::string_view dtype) {
  static constexpr std::pair<std::string_view, uint64_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
  };
  for (const auto& [name, bytes] : kSizes) {
    if (name == dtype) return bytes;
  }
  return std::nullopt;
}

// A JSON integer >= 0, or nullopt for anything else (negative, fractional, not a number).
std::optional<uint64_t> non_negative(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return uint64_t(value.get<int64_t>());
  return std::nullopt;
}

struct DataSpan {
  uint64_t begin = 0;
  uint64_t end = 0;
  std::string tensor;
};

// Reads one tensor's entry and returns where its bytes lie; `data_bytes` is what follows the header.
DataSpan read_tensor_entry(const std::string& where, const std::string& name, const json& entry, uint64_t data_bytes,
                           TensorHeader& tensor) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets")) {
    fail(where, fmt::format("tensor '{}' is described by {}, not an object with dtype, shape and data_offsets; {}",
                            name, shown(entry), kCopyAgain));
  }
  const json& dtype = entry["dtype"];
  const std::optional<uint64_t> element_bytes =
      dtype.is_string() ? dtype_bytes(dtype.get<std::string>()) : std::nullopt;
  if (!element_bytes) {
    fail(where, fmt::format("tensor '{}' has dtype {}, which is no safetensors dtype glqjit knows (BOOL, U8, I8, "
                            "F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64); {}",
                            name, shown(dtype), kCopyAgain));
  }
  tensor.dtype = dtype.get<std::string>();

  const json& shape = entry["shape"];
  const auto bad_shape = [&] {
    fail(where, fmt::format("tensor '{}' has shape {}, not a list of sizes >= 0; {}", name, shown(shape), kCopyAgain));
  };
  if (!shape.is_array()) bad_shape();
  // Saturates instead of wrapping, so an absurd shape cannot pose as a small one.
  constexpr uint64_t kSaturated = std::numeric_limits<uint64_t>::max() / 8;
  uint64_t elements = 1;
  for (const json& dim : shape) {
    const std::optional<uint64_t> extent = non_negative(dim);
    if (!extent || *extent > uint64_t(std::numeric_limits<int64_t>::max())) bad_shape();
    tensor.shape.push_back(int64_t(*extent));
    elements = *extent != 0 && elements > kSaturated / *extent ? kSaturated : elements * *extent;
  }

  const json& offsets = entry["data_offsets"];
  const std::optional<uint64_t> begin =
      offsets.is_array() && offsets.size() == 2 ? non_negative(offsets[0]) : std::nullopt;
  const std::optional<uint64_t> end =
      offsets.is_array() && offsets.size() == 2 ? non_negative(offsets[1]) : std::nullopt;
  if (!begin || !end || *begin > *end) {
    fail(where, fmt::format("tensor '{}' has data_offsets {}, not [begin, end] with 0 <= begin <= end; {}", name,
                            shown(offsets), kCopyAgain));
  }
  if (*end > data_bytes) {
    fail(where, fmt::format("tensor '{}' has data_offsets [{}, {}], beyond the {} bytes of data after the header; {}",
                            name, *begin, *end, data_bytes, kCopyAgain));
  }
  const uint64_t expected_bytes = elements * *element_bytes;  // elements <= max / 8: no overflow
  if (*end - *begin != expected_bytes) {
    fail(where, fmt::format("tensor '{}' is {} {} ({} bytes), but its data_offsets [{}, {}] hold {} bytes; {}", name,
                            tensor.dtype, shown(shape), expected_bytes, *begin, *end, *end - *begin, kCopyAgain));
  }
  return DataSpan{*begin, *end, name};
}

// The tensors must tile the data exactly, as the reference loader demands, so a file glqjit accepts is one
// every loader accepts.
void check_tiling(const std::string& where, std::vector<DataSpan> spans, uint64_t data_bytes) {
  std::sort(spans.begin(), spans.end(),
            [](const DataSpan& a, const DataSpan& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t covered = 0;
  const DataSpan* previous = nullptr;
  for (const DataSpan& span : spans) {
    if (span.begin < covered) {
      fail(where, fmt::format("tensor '{}' (bytes [{}, {})) overlaps tensor '{}' (bytes [{}, {})); {}", span.tensor,
                              span.begin, span.end, previous->tensor, previous->begin, previous->end, kCopyAgain));
    }
    if (span.begin > covered) {
      fail(where, fmt::format("bytes [{}, {}) of the data belong to no tensor (the next is '{}'); {}", covered,
                              span.begin, span.tensor, kCopyAgain));
    }
    covered = span.end;
    previous = &span;
  }
  if (covered != data_bytes) {
    fail(where, fmt::format("the tensors end at byte {} of the data but the file holds {} bytes of data; {}", covered,
                            data_bytes, kCopyAgain));
  }
}

}  // namespace

void read_safetensors_header(std::istream& in, uint64_t file_bytes, const std::string& file, TensorTable& table) {
  const std::string where = fmt::format("safetensors file {}", file);
  if (file_bytes < 8) {
    fail(where, fmt::format("is {} bytes, too short for the 8-byte header length a safetensors file starts with; {}",
                            file_bytes, kCopyAgain));
  }
  unsigned char length_bytes[8];
  if (!in.read(reinterpret_cast<char*>(length_bytes), sizeof length_bytes)) {
    fail(where, "cannot be read to the end of its header length");
  }
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | length_bytes[i];  // little-endian
  if (header_bytes > kMaxHeaderBytes) {
    fail(where, fmt::format("says its header is {} bytes, over the 100 MB limit of the safetensors format; {}",
                            header_bytes, kCopyAgain));
  }
  if (header_bytes > file_bytes - 8) {
    fail(where, fmt::format("says its header is {} bytes, but only {} bytes follow the header length; {}", header_bytes,
                            file_bytes - 8, kCopyAgain));
  }
  std::string header_text(header_bytes, '\0');
  if (!in.read(header_text.data(), std::streamsize(header_bytes))) {
    fail(where, "cannot be read to the end of its header");
  }

  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& parse_error) {  // out_of_range for a number beyond a double
    fail(where, fmt::format("has a header that is not JSON ({}); {}", parse_error.what(), kCopyAgain));
  }
  if (!header.is_object()) {
    fail(where,
         fmt::format("has a header holding a JSON {}, not an object of tensors; {}", header.type_name(), kCopyAgain));
  }
  const uint64_t data_bytes = file_bytes - 8 - header_bytes;
  std::vector<DataSpan> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        fail(where, fmt::format("has '__metadata__' {}, not an object of strings; {}", shown(entry), kCopyAgain));
      }
      continue;
    }
    TensorHeader tensor;
    tensor.file = file;
    spans.push_back(read_tensor_entry(where, name, entry, data_bytes, tensor));
    const auto [placed, fresh] = table.emplace(name, std::move(tensor));
    if (!fresh) {
      fail(where, fmt::format("holds tensor '{}', which {} holds too; remove the stale copy from the folder", name,
                              placed->second.file));
    }
  }
  check_tiling(where, std::move(spans), data_bytes);
}

void read_safetensors_header(const std::filesystem::path& file, TensorTable& table) {
  std::error_code error;
  const std::uintmax_t file_bytes = std::filesystem::file_size(file, error);
  std::ifstream in(file, std::ios::binary);
  if (error || !in) {
    fail(fmt::format("safetensors file {}", file.string()), "cannot be opened; check that it exists and can be read");
  }
  read_safetensors_header(in, file_bytes, file.string(), table);
}

}  // namespace glqjit
