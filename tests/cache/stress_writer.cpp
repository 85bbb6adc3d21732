// One of the processes of the multi-process stress test (test_store_stress.cpp). Waits for EOF on
// stdin (the start signal all writers share), then opens the store and writes, from two threads
// on one Store, the kernels every writer shares, the kernels only it writes and its tuning
// records, checking each row reads back. Exit status 0 when every row was there.
//
// usage: cache_stress_writer DB WRITER SHARED_KERNELS UNIQUE_KERNELS TUNING_RECORDS SHARED_SPECS
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s DB WRITER SHARED UNIQUE TUNING SHARED_SPECS\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int writer = std::stoi(argv[2]);
  const int shared = std::stoi(argv[3]);
  const int unique = std::stoi(argv[4]);
  const int tuning = std::stoi(argv[5]);
  const int shared_specs = std::stoi(argv[6]);

  char byte;
  while (::read(0, &byte, 1) > 0) {
  }

  std::atomic<int> failures{0};
  try {
    Store store(StoreOptions{path, false});
    auto work = [&](int lane) {
      try {
        for (int i = 0; i < shared; ++i) {
          // Lanes and writers walk the shared names from different ends so they collide often.
          const int n = (lane + writer) % 2 == 0 ? i : shared - 1 - i;
          const CompiledKernel kernel = sample_kernel(shared_kernel_name(n));
          store.put_kernel(kernel);
          const auto back = store.find_kernel(kernel.key_digest);
          if (!back || !same_kernel(*back, kernel)) ++failures;
        }
        for (int i = lane; i < unique; i += 2) {
          const CompiledKernel kernel = sample_kernel(unique_kernel_name(writer, i), 2000 + 37 * i);
          store.put_kernel(kernel);
          const auto back = store.find_kernel(kernel.key_digest);
          if (!back || !same_kernel(*back, kernel)) ++failures;
        }
        for (int i = lane; i < tuning; i += 2) {
          const TuningRecord record =
              sample_tuning(unique_tuning_spec(writer, i), 1 << (i % 8), writer_variant(writer));
          store.put_tuning(record);
          const auto back = store.find_tuning(record.device_signature, record.spec, record.batch_bucket);
          if (!back || back->variant != record.variant) ++failures;
        }
        for (int i = lane; i < shared_specs; i += 2) {
          store.put_tuning(sample_tuning("shared-spec-" + std::to_string(i), 16, writer_variant(writer)));
        }
      } catch (const std::exception& error) {
        std::fprintf(stderr, "writer %d lane %d: %s\n", writer, lane, error.what());
        ++failures;
      }
    };
    std::thread other(work, 1);
    work(0);
    other.join();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "writer %d: %s\n", writer, error.what());
    return 1;
  }
  if (failures != 0) {
    std::fprintf(stderr, "writer %d: %d rows did not read back\n", writer, failures.load());
    return 1;
  }
  return 0;
}
