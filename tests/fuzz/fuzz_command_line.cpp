// A whole CLI11 parse of a command line split from the input (one argument per line), against an
// option set built as glq-tune's and glq-dump's are: shape lists through shape_validator, integer
// lists with ranges, members, positive numbers, flags, subcommands with required options, and
// read_numbers_as_decimal over all of it (tools/tool_main.hpp). Asserts: a refusal is a
// CLI::ParseError, never another exception; whatever is accepted passed its checks (every shape
// parses, every bpw and batch is in range, the dtype is a member), however CLI11 was given it.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "tools/tool_main.hpp"

namespace {

using namespace glqjit;

struct Options {
  std::vector<std::string> shapes;
  std::vector<int> bpw = {2, 3, 4};
  std::vector<int> batches = {1};
  std::string dtype = "fp16";
  double budget_minutes = 0;
  int max_candidates = 0;
  int device = 0;
  int64_t in_features = 0;
  bool compile_only = false;
  std::string json, output;
  std::vector<std::string> stores;
};

void add_options(CLI::App& app, Options& options) {
  app.add_option("--shape", options.shapes)->delimiter(',')->check(shape_validator());
  app.add_option("--bpw", options.bpw)->delimiter(',')->check(CLI::Range(2, 8));
  app.add_option("--batch", options.batches)->delimiter(',')->check(CLI::Range(1, 65535));
  app.add_option("--dtype", options.dtype)->check(CLI::IsMember({"fp16", "bf16"}));
  app.add_option("--budget", options.budget_minutes)->check(CLI::PositiveNumber);
  app.add_option("--max-candidates", options.max_candidates)->check(CLI::PositiveNumber);
  app.add_option("--device", options.device)->check(CLI::Range(0, 1023));
  app.add_option("--in-features", options.in_features);
  app.add_flag("--compile-only", options.compile_only);
  app.add_option("--json", options.json)->type_name("FILE");
  CLI::App* merge = app.add_subcommand("merge", "merge stores");
  merge->add_option("stores", options.stores)->required();
  merge->add_option("-o,--output", options.output)->required();
}

void check_accepted(const Options& options) {
  for (const std::string& text : options.shapes) {
    std::string why;
    fuzz::check(parse_shape(text, why).has_value(), "an accepted --shape does not parse: " + text);
  }
  for (const int bpw : options.bpw) fuzz::check(bpw >= 2 && bpw <= 8, "an accepted --bpw is outside 2..8");
  for (const int batch : options.batches)
    fuzz::check(batch >= 1 && batch <= 65535, "an accepted --batch is outside 1..65535");
  fuzz::check(options.dtype == "fp16" || options.dtype == "bf16", "an accepted --dtype is no member: " + options.dtype);
  fuzz::check(options.budget_minutes >= 0, "an accepted --budget is negative");
  fuzz::check(options.max_candidates >= 0, "an accepted --max-candidates is negative");
  fuzz::check(options.device >= 0 && options.device <= 1023, "an accepted --device is outside 0..1023");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> arguments = {"fuzz_command_line"};
  std::string_view rest = fuzz::as_text(data, size);
  while (!rest.empty()) {
    const size_t end = std::min(rest.find_first_of(std::string_view("\n\0", 2)), rest.size());
    arguments.emplace_back(rest.substr(0, end));
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());

  Options options;
  CLI::App app{"fuzz_command_line"};
  add_options(app, options);
  read_numbers_as_decimal(app);
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return 0;
  } catch (const std::exception& error) {
    fuzz::fail(std::string("CLI11 threw something other than CLI::ParseError: ") + error.what());
  }
  check_accepted(options);
  return 0;
}
