// The header of a safetensors file: the JSON table of its tensors' names, dtypes, shapes and byte
// offsets behind an 8-byte little-endian length. Read, never the data, and checked as strictly as
// the reference loader checks it, since a checkpoint folder is outside input.
#pragma once

#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace glqjit {

struct TensorHeader {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string file;  // the safetensors file that holds it, as a path
};
using TensorTable = std::map<std::string, TensorHeader>;

// What a message about a damaged safetensors file or index tells the user to do.
inline constexpr std::string_view kCopyAgain = "the file is damaged or was cut short: copy or export it again";

// Reads the header of the safetensors file `file` (never its data) into `table`. Throws
// Error(invalid_argument) naming the file and the tensor for a file that cannot be read, a length
// or header that lies about the file (too long, not JSON, not an object, an entry without dtype,
// shape or data_offsets, offsets beyond the data, sizes that disagree with the offsets, tensors
// that do not tile the data exactly) and for a tensor `table` holds already (from another file).
void read_safetensors_header(const std::filesystem::path& file, TensorTable& table);

// The same from a stream at the file's first byte, for a file of `file_bytes` bytes; `file` names
// it in messages and in each TensorHeader.
void read_safetensors_header(std::istream& in, uint64_t file_bytes, const std::string& file, TensorTable& table);

}  // namespace glqjit
