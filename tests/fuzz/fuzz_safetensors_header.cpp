// read_safetensors_header (tuner/safetensors_header.hpp), what read_glq_checkpoint reads every
// shard through, on the input as a whole file: its 8-byte length, header and data. Asserts: it
// throws nothing but glqjit::Error; an accepted header names known dtypes and tensors whose sizes
// add up to exactly the data after the header; reading the same file again into the table, as
// another shard, is refused when it holds a tensor and accepted when it holds none.
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "tuner/safetensors_header.hpp"

namespace {

using namespace glqjit;

uint64_t element_bytes(const std::string& dtype) {
  static const std::map<std::string, uint64_t> kBytes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
  };
  const auto found = kBytes.find(dtype);
  fuzz::check(found != kBytes.end(), "an accepted tensor of dtype " + dtype + ", which safetensors does not have");
  return found->second;
}

bool read(const std::string& bytes, const std::string& file, TensorTable& table) {
  std::istringstream in(bytes);
  return fuzz::parses([&] { read_safetensors_header(in, bytes.size(), file, table); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(fuzz::as_text(data, size));
  TensorTable table;
  if (!read(bytes, "fuzz/a.safetensors", table)) return 0;

  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | uint8_t(bytes[size_t(i)]);
  unsigned __int128 tensor_bytes = 0;
  for (const auto& [name, tensor] : table) {
    fuzz::check(tensor.file == "fuzz/a.safetensors", "a tensor that names another file");
    unsigned __int128 elements = 1;
    for (const int64_t dim : tensor.shape) {
      fuzz::check(dim >= 0, "an accepted negative dimension in " + name);
      elements = elements * uint64_t(dim);
      if (elements > size) elements = size + 1;  // more than the data can hold, so it must not be accepted
    }
    tensor_bytes += elements * element_bytes(tensor.dtype);
  }
  fuzz::check(tensor_bytes == size - 8 - header_bytes, "accepted tensors do not fill the data exactly");

  TensorTable again = table;
  const bool twice = read(bytes, "fuzz/b.safetensors", again);
  fuzz::check(twice == table.empty(), twice ? "a shard holding the same tensors again was accepted"
                                            : "a second shard without tensors was refused");
  return 0;
}
