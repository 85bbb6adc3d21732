#include "tools/tool_main.hpp"

#include <fmt/format.h>

#include "support/log.hpp"

namespace glqjit {

std::unique_ptr<Store> open_tool_store(const std::string& cache_path, bool read_only) {
  if (!cache_path.empty()) return std::make_unique<Store>(StoreOptions{cache_path, read_only});
  try {
    return std::make_unique<Store>(StoreOptions{"", read_only});
  } catch (const Error& error) {
    log_line(LogLevel::warn, fmt::format("{}; going on without a kernel store", error.what()));
    return nullptr;
  }
}

}  // namespace glqjit
