// How the parsers of outside files (config.json, safetensors headers) quote a value in an error.
#pragma once

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>

namespace glqjit {

// A value as the file spells it, cut short. Large or nested values are only described: dumping
// them would cost as much memory as the file, and recurse as deep as a hostile file nests.
inline std::string shown(const nlohmann::json& value) {
  const auto nested = [](const nlohmann::json& element) { return element.is_structured(); };
  if (value.is_structured() && (value.size() > 8 || std::any_of(value.begin(), value.end(), nested))) {
    return fmt::format("a JSON {} of {} entries", value.type_name(), value.size());
  }
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

}  // namespace glqjit
