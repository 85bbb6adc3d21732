// The identity of one compiled kernel (DESIGN.md, Contracts: Cache key). Every part that can
// change the machine code is in it; nothing machine-local (paths, mtimes) is.
#pragma once

#include <string>
#include <string_view>

namespace glqjit {

struct KernelKey {
  int schema_version = 0;
  std::string library_version;
  std::string source_hash;  // of the generated source, templates included (codegen source_hash_of)
  std::string spec;         // canonical text of the LinearSpec
  std::string variant;      // canonical text of the Variant
  int batch_bucket = 0;
  std::string arch;  // "sm_90a" differs from "sm_90"
  std::string nvrtc_version;
  std::string options;  // canonical NVRTC options, space separated

  std::string canonical() const;  // one "name=value" line per part, fixed order
  std::string digest() const;     // SHA-256 hex of canonical()
};

// The arch part of a canonical() text ("sm_90a"); empty when the text has no arch line.
std::string arch_of_canonical(std::string_view canonical);

}  // namespace glqjit
