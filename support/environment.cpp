#include "support/environment.hpp"

#include <cstdlib>
#include <string_view>

namespace glqjit {

bool environment_flag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

}  // namespace glqjit
