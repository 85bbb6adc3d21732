// The device templates, embedded into the library at build time (no file access at run time).
#pragma once

#include <string_view>
#include <vector>

namespace glqjit {

struct TemplateFile {
  std::string_view name;  // e.g. "decode.cuh"
  std::string_view text;
};

// In the order a kernel source includes them.
const std::vector<TemplateFile>& template_files();

}  // namespace glqjit
