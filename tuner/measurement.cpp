#include "tuner/measurement.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>

#include "glqjit/error.hpp"
#include "tuner/json_value_text.hpp"

namespace glqjit {
namespace {

using Json = nlohmann::json;

constexpr std::array kStatusNames = {
    std::pair{MeasurementStatus::ok, std::string_view("ok")},
    std::pair{MeasurementStatus::compile_failed, std::string_view("compile_failed")},
    std::pair{MeasurementStatus::launch_failed, std::string_view("launch_failed")},
    std::pair{MeasurementStatus::wrong_result, std::string_view("wrong_result")},
    std::pair{MeasurementStatus::over_resources, std::string_view("over_resources")},
};

// A whole number that fits an int: get<int>() would convert a fraction, and a value beyond an int
// with undefined behaviour.
int int_field(const Json& object, const char* key) {
  const Json& value = object.at(key);
  if (value.is_number_integer()) {
    const bool fits = value.is_number_unsigned() ? value.get<uint64_t>() <= uint64_t(INT_MAX)
                                                 : value.get<int64_t>() >= INT_MIN && value.get<int64_t>() <= INT_MAX;
    if (fits) return value.get<int>();
  }
  throw Error(Status::invalid_argument,
              fmt::format("a stored measurement is not readable: '{}' is {}, not a whole number that fits an int", key,
                          shown(value)));
}

}  // namespace

std::string_view status_name(MeasurementStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "unknown";
}

MeasurementStatus parse_status(std::string_view name) {
  for (const auto& [value, known] : kStatusNames) {
    if (known == name) return value;
  }
  throw Error(Status::invalid_argument,
              fmt::format("measurement status '{}' is none of ok, compile_failed, launch_failed, wrong_result, "
                          "over_resources",
                          name));
}

std::string to_json(const Measurement& m) {
  Json resources = Json::array();
  for (const KernelResources& r : m.resources) {
    resources.push_back({{"kernel", r.name},
                         {"registers", r.registers},
                         {"stack_bytes", r.stack_bytes},
                         {"spill_store_bytes", r.spill_store_bytes},
                         {"spill_load_bytes", r.spill_load_bytes},
                         {"shared_bytes", r.shared_bytes}});
  }
  const Json json = {{"variant", m.variant.canonical()},  {"kernel_digest", m.kernel_digest},
                     {"status", status_name(m.status)},
                     {"median_us", m.median_us},          {"spread", m.spread},
                     {"samples_us", m.samples_us},        {"reason", m.reason},
                     {"gate_error", m.gate_error},        {"resources", resources}};
  // Invalid UTF-8 in a compile log must not make the text unreadable JSON.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Measurement measurement_from_json(std::string_view text) {
  try {
    const Json json = Json::parse(text);
    Measurement m;
    m.variant = parse_variant(json.at("variant").get<std::string>());
    m.kernel_digest = json.at("kernel_digest").get<std::string>();
    m.status = parse_status(json.at("status").get<std::string>());
    m.median_us = json.at("median_us").get<double>();
    m.spread = json.at("spread").get<double>();
    m.samples_us = json.at("samples_us").get<std::vector<double>>();
    m.reason = json.at("reason").get<std::string>();
    m.gate_error = json.value("gate_error", 0.0);
    for (const Json& r : json.at("resources")) {
      m.resources.push_back({r.at("kernel").get<std::string>(), int_field(r, "registers"), int_field(r, "stack_bytes"),
                             int_field(r, "spill_store_bytes"), int_field(r, "spill_load_bytes"),
                             int_field(r, "shared_bytes")});
    }
    return m;
  } catch (const Json::exception& error) {
    throw Error(Status::invalid_argument, fmt::format("a stored measurement is not readable: {}", error.what()));
  }
}

void summarize_samples(Measurement& m) {
  m.median_us = m.spread = 0;
  if (m.samples_us.empty()) return;
  std::vector<double> sorted = m.samples_us;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  m.median_us = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  if (m.median_us > 0) m.spread = (sorted.back() - sorted.front()) / 2 / m.median_us;
}

}  // namespace glqjit
