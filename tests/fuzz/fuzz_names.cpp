// The parsers of names a user or a file writes: parse_arch (codegen/arch.hpp), parse_dtype and
// parse_codebook (format/), parse_strategy (tuner/strategy.hpp) and parse_status
// (tuner/measurement.hpp), each on the whole input. Asserts: each throws nothing but
// glqjit::Error; what it accepts is a name it gives back (or one of its documented spellings),
// so a name read in is the name written out.
#include <cstdint>
#include <string>
#include <string_view>

#include "codegen/arch.hpp"
#include "format/codebook.hpp"
#include "format/dtype.hpp"
#include "fuzz_check.hpp"
#include "tuner/measurement.hpp"
#include "tuner/strategy.hpp"

namespace {

using namespace glqjit;

void check_arch(std::string_view text) {
  Arch arch;
  if (!fuzz::parses([&] { arch = parse_arch(text); })) return;
  fuzz::check(arch.name() == text, "parse_arch accepted '" + std::string(text) + "', which is not the name it gives");
  bool supported = false;
  for (const Arch& known : supported_archs()) supported = supported || known == arch;
  fuzz::check(supported, "parse_arch gave an architecture outside supported_archs()");
}

void check_dtype(std::string_view text) {
  DType dtype{};
  if (!fuzz::parses([&] { dtype = parse_dtype(text); })) return;
  const bool spelling = text == "fp16" || text == "float16" || text == "bf16" || text == "bfloat16";
  fuzz::check(spelling, "parse_dtype accepted '" + std::string(text) + "', no documented spelling");
  DType again{};
  fuzz::check(fuzz::parses([&] { again = parse_dtype(dtype_name(dtype)); }) && again == dtype,
              "parse_dtype(dtype_name()) is not the dtype");
}

void check_codebook(std::string_view text) {
  Codebook codebook{};
  if (!fuzz::parses([&] { codebook = parse_codebook(text); })) return;
  fuzz::check((text == "e8p" && codebook == Codebook::e8p) || (text == "e81b" && codebook == Codebook::e81b),
              "parse_codebook accepted '" + std::string(text) + "' or gave the other codebook");
}

void check_strategy(std::string_view text) {
  StrategyKind kind{};
  if (!fuzz::parses([&] { kind = parse_strategy(text); })) return;
  fuzz::check(
      (text == "walk" && kind == StrategyKind::walk) || (text == "exhaustive" && kind == StrategyKind::exhaustive),
      "parse_strategy accepted '" + std::string(text) + "' or gave the other strategy");
}

void check_status(std::string_view text) {
  MeasurementStatus status{};
  if (!fuzz::parses([&] { status = parse_status(text); })) return;
  fuzz::check(status_name(status) == text, "parse_status accepted '" + std::string(text) + "', not its status_name");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  check_arch(text);
  check_dtype(text);
  check_codebook(text);
  check_strategy(text);
  check_status(text);
  return 0;
}
