#include "codegen/spec.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "glqjit/error.hpp"

namespace glqjit {

std::string LinearSpec::canonical() const {
  std::string text = fmt::format("in={} out={} bpw={} dtype={} bias={} rht={}", in_features, out_features, bpw,
                                 dtype_name(dtype), has_bias ? 1 : 0, legacy_single_block ? "single" : "blocks");
  if (is_group()) text += fmt::format(" shards={}", fmt::join(shard_out_features, ","));
  return text;
}

LinearSpec LinearSpec::shard(int index) const {
  LinearSpec single = *this;
  single.shard_out_features.clear();
  if (is_group()) single.out_features = shard_out_features.at(size_t(index));
  return single;
}

LinearSpec group_of(const std::vector<LinearSpec>& linears) {
  if (linears.empty() || linears.size() > size_t(kMaxGroupShards)) {
    throw Error(Status::invalid_argument,
                fmt::format("a group holds 1 to {} linears, not {}", kMaxGroupShards, linears.size()));
  }
  LinearSpec group = linears.front();
  group.out_features = 0;
  for (size_t k = 0; k < linears.size(); ++k) {
    const LinearSpec& linear = linears[k];
    if (linear.is_group()) throw Error(Status::invalid_argument, "a linear of a group cannot itself be a group");
    if (linear.in_features != group.in_features || linear.dtype != group.dtype) {
      throw Error(Status::invalid_argument,
                  fmt::format("linear {} of the group ({}) does not read the same input as linear 0 ({}): the "
                              "linears of a group share in_features and dtype",
                              k, linear.canonical(), linears.front().canonical()));
    }
    group.shard_out_features.push_back(linear.out_features);
    group.out_features += linear.out_features;
  }
  return group;
}

int64_t LinearSpec::shard_first_row(int index) const {
  int64_t row = 0;
  for (int s = 0; s < index; ++s) row += shard(s).geometry().m_pad;
  return row;
}

Geometry LinearSpec::geometry() const {
  if (!is_group()) return make_geometry(in_features, out_features, legacy_single_block);
  if (shard_out_features.size() > size_t(kMaxGroupShards)) {
    throw Error(Status::unsupported_shape, fmt::format("a group of {} linears is more than the {} one group may hold",
                                                       shard_out_features.size(), kMaxGroupShards));
  }
  int64_t sum = 0;
  for (int64_t features : shard_out_features) sum += features;
  if (sum != out_features) {
    throw Error(Status::invalid_argument, fmt::format("a group's out_features {} is not the sum of its linears' ({})",
                                                      out_features, fmt::join(shard_out_features, " + ")));
  }
  Geometry group = make_geometry(in_features, shard_out_features.front(), legacy_single_block);
  group.out_features = out_features;
  for (size_t s = 1; s < shard_out_features.size(); ++s) {
    const Geometry next = make_geometry(in_features, shard_out_features[s], legacy_single_block);
    group.m_pad += next.m_pad;
    group.out_blocks.insert(group.out_blocks.end(), next.out_blocks.begin(), next.out_blocks.end());
  }
  return group;
}

Recipe LinearSpec::recipe() const { return recipe_for_bpw(bpw); }

}  // namespace glqjit
