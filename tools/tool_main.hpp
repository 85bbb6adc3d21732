// What every glqjit tool does the same way: run the body, turn errors into one line on stderr
// and a nonzero exit status, and open the kernel store the user asked for.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cache/store.hpp"
#include "glqjit/error.hpp"
#include "support/log.hpp"

namespace glqjit {

// CLI11 reads numbers as strtoll, strtoull and strtold do, so "010" would be eight, "0x10"
// sixteen, "99999999999999999999" the largest int64, "-5" a huge unsigned, and "nan" a number:
// every integer option of `app` and its subcommands takes decimal digits instead (an optional
// sign, leading zeros dropped, within 64 bits, no '-' for unsigned types), every floating-point
// option a finite decimal number, and anything else is refused with a message saying so.
void read_numbers_as_decimal(CLI::App& app);

// Exit status: 0 success (also for --help and --version, which print "NAME VERSION"), 1 a glqjit
// error (the message says what to do), 2 bad command line.
template <class Body>
int run_tool(const char* name, CLI::App& app, int argc, char** argv, Body&& body) {
  log_enabled(LogLevel::warn);  // reads GLQJIT_LOG now, so that every tool reports a bad value
  try {
    app.set_version_flag("--version", std::string(name) + " " + GLQJIT_VERSION);
    read_numbers_as_decimal(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  try {
    body();
    return 0;
  } catch (const Error& error) {
    std::fprintf(stderr, "%s: error: %s\n", name, error.what());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: internal error: %s\n", name, error.what());
  }
  return 1;
}

// A layer shape as the command lines write it: "OUTxIN" (out_features x in_features).
struct Shape {
  int64_t out = 0;
  int64_t in = 0;
  std::string name() const;  // "OUTxIN"
  bool operator==(const Shape&) const = default;
};

// "OUTxIN" with whole decimal numbers from 1 to kMaxFeatures; `why` says what is wrong otherwise.
std::optional<Shape> parse_shape(const std::string& text, std::string& why);

// A CLI11 validator for parse_shape.
CLI::Validator shape_validator();

// Writes `bytes` to standard output and flushes it; throws Error naming the reason (a full disk,
// a closed pipe) when they did not all get there.
void write_stdout(std::string_view bytes);

// Writes `bytes` to `path` ("-": standard output) so that a reader never sees a part of them: into
// a temporary file beside it, renamed over it once complete. A path that exists and is not a
// regular file (/dev/null, a FIFO) is written directly. Throws Error "cannot write WHAT PATH: reason"
// (`what` names the option, e.g. "--json"; may be empty), leaving no temporary file behind.
void write_output_file(const std::string& path, std::string_view bytes, const std::string& what);

// Throws the Error write_output_file would ("cannot write WHAT PATH: reason") when it could not
// write `path`, creating nothing: for a tool to fail before long work, not after it.
void check_output_writable(const std::string& path, const std::string& what);

// --cache PATH opens that store (errors are fatal); without it the default store is used if it
// can be opened, else nothing (a warning says so).
std::unique_ptr<Store> open_tool_store(const std::string& cache_path, bool read_only);

}  // namespace glqjit
