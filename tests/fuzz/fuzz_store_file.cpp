// The store's open and its readers (cache/store.hpp) on the input as a whole sqlite file: a
// damaged, truncated, foreign, old or hand-edited store. It is opened read-only and read, then
// opened writable (which may migrate it, or set it aside and rebuild it) and read and written.
// Asserts: nothing but glqjit::Error escapes; a read-only open and its reads leave the file's bytes
// as they were; a writable open that refuses the file leaves its bytes as they were; one that
// sets it aside keeps the bytes whole in <path>.corrupt-*; writes and reads after a writable open
// answer with a value or a glqjit::Error.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "cache/store.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace glqjit;
namespace fs = std::filesystem;

// In memory where the machine has a tmpfs: every Store open and close syncs the file.
fs::path scratch_folder() {
  std::error_code ignored;
  const fs::path base = fs::is_directory("/dev/shm", ignored) && access("/dev/shm", W_OK) == 0
                            ? fs::path("/dev/shm")
                            : fs::temp_directory_path();
  const fs::path folder = base / ("glqjit-fuzz-store-file-" + std::to_string(getpid()));
  fs::create_directories(folder);
  return folder;
}

struct Scratch {
  fs::path folder = scratch_folder();
  fs::path store = folder / "store.db";
  ~Scratch() {
    std::error_code ignored;
    fs::remove_all(folder, ignored);
  }
  void clear() const {
    for (const fs::directory_entry& entry : fs::directory_iterator(folder)) fs::remove(entry.path());
  }
};

const Scratch& scratch() {
  static const Scratch made;
  return made;
}

std::string contents(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void read_all(Store& store) {
  store.for_each_kernel([](const CompiledKernel&) {});
  for (const TuningRecord& record : store.all_tuning()) {
    store.find_tuning(record.device_signature, record.spec, record.batch_bucket);
    store.find_measurements(record.device_signature, record.spec, record.batch_bucket);
  }
  store.all_measurements();
  store.find_kernel("0123456789abcdef");
}

// A file's own schema (a trigger, a constraint, a row under the same key) may keep what is put
// from coming back, so only that the calls answer is checked.
void write_and_read_back(Store& store) {
  CompiledKernel kernel;
  kernel.key_digest = "fuzz-kernel";
  kernel.key_text = "arch=sm_90a\n";
  kernel.cubin = {1, 2, 3};
  store.put_kernel(kernel);
  store.find_kernel(kernel.key_digest);
  store.put_tuning(TuningRecord{"fuzz-device", "fuzz-spec", 1, "warps=8", 1.5, "{}", 0});
  store.find_tuning("fuzz-device", "fuzz-spec", 1);
  store.put_measurement(MeasurementRecord{"fuzz-device", "fuzz-spec", 1, "warps=8", "ok", 1.5, "{}", 0});
  store.find_measurements("fuzz-device", "fuzz-spec", 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Scratch& files = scratch();
  files.clear();
  const std::string bytes(fuzz::as_text(data, size));
  std::ofstream(files.store, std::ios::binary) << bytes;

  fuzz::parses([&] {
    Store store(StoreOptions{files.store.string(), /*read_only=*/true});
    read_all(store);
  });
  fuzz::check(contents(files.store) == bytes, "a read-only open or its reads changed the file");

  std::unique_ptr<Store> writable;
  if (fuzz::parses([&] { writable = std::make_unique<Store>(StoreOptions{files.store.string(), false}); })) {
    // A file whose tables pass the open's checks may still refuse a write (a constraint of its
    // own): that is a cache_error, not a lost record.
    fuzz::parses([&] {
      read_all(*writable);
      if (!writable->read_only()) write_and_read_back(*writable);
    });
    writable.reset();
  } else {
    fuzz::check(contents(files.store) == bytes, "a writable open refused the file but changed it");
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(files.folder)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("store.db.corrupt-", 0) == 0 && name.find('-', 17) == std::string::npos) {
      fuzz::check(contents(entry.path()) == bytes, "a corrupt file was set aside with other bytes than it had");
    }
  }
  return 0;
}
