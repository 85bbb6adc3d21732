#include "cache/key.hpp"

#include <fmt/format.h>

#include "support/sha256.hpp"

namespace glqjit {
namespace {

// Values are written verbatim except that a backslash, newline or carriage return is escaped,
// so no value can forge another line and canonical() stays one-to-one with the parts.
std::string escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

// The order and names below are part of the on-disk contract: changing them changes every
// digest, so every stored kernel misses. Do that only together with a schema_version bump.
std::string KernelKey::canonical() const {
  return fmt::format(
      "schema_version={}\n"
      "library_version={}\n"
      "source_hash={}\n"
      "spec={}\n"
      "variant={}\n"
      "batch_bucket={}\n"
      "arch={}\n"
      "nvrtc_version={}\n"
      "options={}\n",
      schema_version, escape(library_version), escape(source_hash), escape(spec), escape(variant), batch_bucket,
      escape(arch), escape(nvrtc_version), escape(options));
}

std::string KernelKey::digest() const { return sha256_hex(canonical()); }

// Arch names hold none of the characters escape() changes, so the value is taken as written.
std::string arch_of_canonical(std::string_view canonical) {
  static constexpr std::string_view kLine = "arch=";
  size_t start = 0;
  if (!canonical.starts_with(kLine)) {
    const size_t line = canonical.find("\narch=");
    if (line == std::string_view::npos) return {};
    start = line + 1;
  }
  start += kLine.size();
  const size_t end = canonical.find('\n', start);  // npos for a last line without newline: substr takes the rest
  return std::string(canonical.substr(start, end - start));
}

}  // namespace glqjit
