#include "tuner/input_groups.hpp"

#include <algorithm>

namespace glqjit {
namespace {

const std::vector<std::string>* group_roles_of(const std::string& role) {
  for (const std::vector<std::string>& group : input_group_roles()) {
    if (std::find(group.begin(), group.end(), role) != group.end()) return &group;
  }
  return nullptr;
}

// The name without its role: linears of one layer share it.
std::string layer_prefix(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? "" : name.substr(0, dot);
}

}  // namespace

const std::vector<std::vector<std::string>>& input_group_roles() {
  static const std::vector<std::vector<std::string>> roles = {{"q_proj", "k_proj", "v_proj"},
                                                              {"gate_proj", "up_proj"}};
  return roles;
}

std::string linear_role(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

std::vector<std::vector<ModelLinear>> group_by_input(const std::vector<ModelLinear>& linears) {
  std::vector<std::vector<ModelLinear>> parts;
  for (const ModelLinear& linear : linears) {
    const std::string role = linear_role(linear.name);
    const std::vector<std::string>* group = group_roles_of(role);
    auto joins = [&](const std::vector<ModelLinear>& part) {
      const ModelLinear& first = part.front();
      return group != nullptr && group_roles_of(linear_role(first.name)) == group &&
             layer_prefix(first.name) == layer_prefix(linear.name) &&
             std::none_of(part.begin(), part.end(),
                          [&](const ModelLinear& other) { return linear_role(other.name) == role; });
    };
    const auto part = std::find_if(parts.begin(), parts.end(), joins);
    if (part == parts.end()) {
      parts.push_back({linear});
    } else {
      part->push_back(linear);
    }
  }
  return parts;
}

bool is_whole_group(const std::vector<ModelLinear>& part) {
  const std::vector<std::string>* group = group_roles_of(linear_role(part.front().name));
  return group != nullptr && part.size() == group->size();
}

}  // namespace glqjit
