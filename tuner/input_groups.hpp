// The linears of a decoder layer that read the same input (q, k and v; gate and up), which a
// serving stack runs as one LinearGroup (runtime/linear_group.hpp): glq-bench times them so, and
// glq-tune tunes the group's one kernel.
#pragma once

#include <string>
#include <vector>

#include "tuner/model_config.hpp"

namespace glqjit {

// The roles of each group, in layer order: {q_proj, k_proj, v_proj}, {gate_proj, up_proj}.
const std::vector<std::vector<std::string>>& input_group_roles();

// A linear's role: the last dot-separated part of its name ("q_proj" of
// "model.layers.0.self_attn.q_proj", or of "q_proj" itself).
std::string linear_role(const std::string& name);

// `linears` in parts, in first-seen order: the linears of one group (their roles in one entry of
// input_group_roles, the same name before the role, each role once) as one part in the order they
// came, every other linear alone.
std::vector<std::vector<ModelLinear>> group_by_input(const std::vector<ModelLinear>& linears);

// Whether `part` holds every role of its group, each once: the linears a serving stack's
// LinearGroup would hold.
bool is_whole_group(const std::vector<ModelLinear>& part);

}  // namespace glqjit
