#include "cache/transfer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <stdio.h>   // renameat2
#include <stdlib.h>  // mkstemp
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "cache/open.hpp"
#include "cache/sqlite.hpp"
#include "glqjit/error.hpp"

namespace glqjit {
namespace {

namespace fs = std::filesystem;

// "90" for a signature with a "cc=9.0" part; nullopt when it has none.
std::optional<std::string> compute_capability_digits(std::string_view signature) {
  while (!signature.empty()) {
    const size_t bar = signature.find('|');
    std::string_view part = signature.substr(0, bar);
    signature = bar == std::string_view::npos ? std::string_view() : signature.substr(bar + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.starts_with("cc=")) continue;
    part.remove_prefix(3);
    const size_t dot = part.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == part.size()) return std::nullopt;
    const std::string major(part.substr(0, dot));
    const std::string minor(part.substr(dot + 1));
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!std::ranges::all_of(major, is_digit) || !std::ranges::all_of(minor, is_digit)) return std::nullopt;
    return major + minor;
  }
  return std::nullopt;
}

// The arches a device runs kernels of: the plain target and the arch-specific "a" one.
std::vector<std::string> arches_of_device(const std::string& cc_digits) {
  return {"sm_" + cc_digits, "sm_" + cc_digits + "a"};
}

bool device_runs(std::string_view signature, const std::string& arch) {
  const std::optional<std::string> digits = compute_capability_digits(signature);
  if (!digits) return false;
  const std::vector<std::string> arches = arches_of_device(*digits);
  return std::ranges::find(arches, arch) != arches.end();
}

// The arches whose kernels the export keeps; nullopt for every kernel.
std::optional<std::vector<std::string>> exported_arches(const ExportFilter& filter) {
  if (filter.device_signature.empty()) {
    if (filter.arch.empty()) return std::nullopt;
    return std::vector<std::string>{filter.arch};
  }
  const std::optional<std::string> digits = compute_capability_digits(filter.device_signature);
  if (!digits) {
    throw Error(
        Status::cache_error,
        fmt::format("the device signature '{}' of the export filter has no 'cc=MAJOR.MINOR' part, so the kernels of "
                    "its arch cannot be picked; pass the signature as the store holds it (glq-dump tuning "
                    "prints them)",
                    filter.device_signature));
  }
  std::vector<std::string> arches = arches_of_device(*digits);
  if (!filter.arch.empty()) std::erase_if(arches, [&](const std::string& arch) { return arch != filter.arch; });
  return arches;
}

bool record_fits(const std::string& device_signature, const ExportFilter& filter) {
  return (filter.device_signature.empty() || device_signature == filter.device_signature) &&
         (filter.arch.empty() || device_runs(device_signature, filter.arch));
}

// An empty file beside `beside` for a store to be built in; it is deleted at the end of the scope
// unless keep() was called, and what sqlite makes beside it (-wal, -shm, -journal) always is (a
// shared folder keeps a closed store's -wal and -shm: side_files.hpp).
class TemporaryStoreFile {
 public:
  explicit TemporaryStoreFile(const std::string& beside) {
    std::string name = beside + ".partial-XXXXXX";
    const int fd = ::mkstemp(name.data());
    if (fd < 0) {
      throw Error(Status::cache_error,
                  fmt::format("cache export to {}: cannot create a temporary file beside it: {}; export into a "
                              "writable folder",
                              beside, std::strerror(errno)));
    }
    ::close(fd);
    path_ = std::move(name);
  }
  ~TemporaryStoreFile() {
    for (const char* suffix : {"-wal", "-shm", "-journal"}) ::unlink((path_ + suffix).c_str());
    if (!kept_) ::unlink(path_.c_str());
  }
  TemporaryStoreFile(const TemporaryStoreFile&) = delete;
  TemporaryStoreFile& operator=(const TemporaryStoreFile&) = delete;

  const std::string& path() const { return path_; }
  void keep() { kept_ = true; }

 private:
  std::string path_;
  bool kept_ = false;
};

[[noreturn]] void throw_exists(const std::string& to) {
  throw Error(Status::cache_error,
              fmt::format("cache export to {}: the file exists, and an export never overwrites one; export to a new "
                          "path, or delete that file first",
                          to));
}

// The one message of a transfer that failed: what was being done, what that means for the
// files, and the failure itself (which names its path and what to do).
[[noreturn]] void throw_failed(const std::string& doing, const std::string& outcome, const std::string& why) {
  throw Error(Status::cache_error, fmt::format("{} failed, so {}: {}", doing, outcome, why));
}

std::string corrupt_text(const sqlite::Corrupt& corrupt) {
  return fmt::format("cache store {} is corrupt ({}); delete it so it is rebuilt, or use a good copy", corrupt.path,
                     corrupt.detail);
}

}  // namespace

TransferCounts export_store(Store& from, const std::string& to, const ExportFilter& filter) {
  std::error_code error;
  if (fs::symlink_status(to, error).type() != fs::file_type::not_found && !error) throw_exists(to);
  const std::string doing = fmt::format("exporting {} to {}", from.path(), to);
  const std::string outcome = fmt::format("{} was not written", to);
  TransferCounts counts;
  try {
    const std::optional<std::vector<std::string>> arches = exported_arches(filter);
    ensure_parent_folder(to);
    TemporaryStoreFile temporary(to);
    {
      Store out(StoreOptions{temporary.path(), false});
      std::scoped_lock lock(from.mutex_, out.mutex_);
      // A read snapshot of `from`, so the export is one consistent state of it; it only reads, so
      // it simply ends with the scope.
      sqlite::Transaction snapshot(from.db_, from.path_, "BEGIN", "reading the store to export");
      sqlite::Transaction write(out.db_, out.path_, "BEGIN IMMEDIATE", "writing the export");
      from.read_kernels(arches, [&](const CompiledKernel& kernel) { counts.kernels += out.write_kernel(kernel); });
      for (const TuningRecord& record : from.read_tuning()) {
        if (record_fits(record.device_signature, filter)) {
          counts.tuning += out.write_tuning(record, Store::OnConflict::replace);
        }
      }
      for (const MeasurementRecord& record : from.read_measurements()) {
        if (record_fits(record.device_signature, filter)) {
          counts.measurements += out.write_measurement(record, Store::OnConflict::replace);
        }
      }
      write.commit();
    }  // closing `out` checkpoints its WAL into the file and removes the -wal and -shm
    if (::renameat2(AT_FDCWD, temporary.path().c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
      if (errno == EEXIST) throw_exists(to);
      throw Error(Status::cache_error, fmt::format("cache export to {}: cannot rename {} to it: {}; export into a "
                                                   "folder on a local filesystem",
                                                   to, temporary.path(), std::strerror(errno)));
    }
    temporary.keep();
  } catch (const sqlite::Corrupt& corrupt) {
    throw_failed(doing, outcome, corrupt_text(corrupt));
  } catch (const Error& failure) {
    throw_failed(doing, outcome, failure.what());
  }
  return counts;
}

TransferCounts merge_store(Store& into, const std::string& from) {
  const std::string doing = fmt::format("merging {} into {}", from, into.path());
  const std::string outcome = fmt::format("{} is unchanged", into.path());
  if (into.read_only()) {
    throw_failed(
        doing, outcome,
        fmt::format("cache store {} is open read-only; open it without read-only on a writable file", into.path()));
  }
  std::error_code error;
  if (fs::equivalent(into.path(), from, error)) {
    throw_failed(doing, outcome, "they are the same file, which already holds every row; name another store");
  }
  TransferCounts counts;
  try {
    Store source(StoreOptions{from, true});
    std::scoped_lock lock(into.mutex_, source.mutex_);
    sqlite::Transaction snapshot(source.db_, source.path_, "BEGIN", "reading the store to merge");
    sqlite::Transaction write(into.db_, into.path_, "BEGIN IMMEDIATE", "merging a store");
    source.read_kernels(std::nullopt,
                        [&](const CompiledKernel& kernel) { counts.kernels += into.write_kernel(kernel); });
    for (const TuningRecord& record : source.read_tuning()) {
      counts.tuning += into.write_tuning(record, Store::OnConflict::keep_newer);
    }
    for (const MeasurementRecord& record : source.read_measurements()) {
      counts.measurements += into.write_measurement(record, Store::OnConflict::keep_newer);
    }
    write.commit();
  } catch (const sqlite::Corrupt& corrupt) {
    throw_failed(doing, outcome, corrupt_text(corrupt));
  } catch (const Error& failure) {
    throw_failed(doing, outcome, failure.what());
  }
  return counts;
}

}  // namespace glqjit
