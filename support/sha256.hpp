// SHA-256 (FIPS 180-4): content hashes for cache keys and for checking dumps against FORMAT.md.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace glqjit {

class Sha256 {
 public:
  Sha256();
  Sha256& update(std::string_view bytes);
  std::string hex_digest();  // finishes the hash; call once

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view bytes);

}  // namespace glqjit
