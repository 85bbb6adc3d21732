// One of the processes of the multi-process stress test (test_store_stress.cpp). Waits for EOF on
// stdin (the start signal all writers share), then opens the store and writes, from two threads
// on one Store, the kernels every writer shares, the kernels only it writes, its tuning records,
// its measurements and the measurements every writer shares, checking each row reads back. After
// each of its own measurements is committed it writes "<lane> <i>" as one line to stdout, so a
// test that kills it knows what it must find. Exit status 0 when every row was there.
//
// usage: cache_stress_writer DB WRITER SHARED_KERNELS UNIQUE_KERNELS TUNING_RECORDS SHARED_SPECS
//        MEASUREMENTS SHARED_MEASUREMENTS SEED
#include <unistd.h>

#include <algorithm>
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
  if (argc != 10) {
    std::fprintf(stderr,
                 "usage: %s DB WRITER SHARED UNIQUE TUNING SHARED_SPECS MEASUREMENTS SHARED_MEASUREMENTS SEED\n",
                 argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const int writer = std::stoi(argv[2]);
  const int shared = std::stoi(argv[3]);
  const int unique = std::stoi(argv[4]);
  const int tuning = std::stoi(argv[5]);
  const int shared_specs = std::stoi(argv[6]);
  const int measurements = std::stoi(argv[7]);
  const int shared_measurements = std::stoi(argv[8]);
  const uint64_t seed = std::stoull(argv[9]);

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
        for (int k = lane; k < shared_measurements; k += 2) store.put_measurement(shared_measurement(seed, writer, k));
        for (int i = lane; i < measurements; i += 2) {
          const MeasurementRecord record = stress_measurement(seed, writer, i);
          store.put_measurement(record);
          const std::string line = std::to_string(lane) + " " + std::to_string(i) + "\n";
          if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ++failures;
          const auto back = store.find_measurements(record.device_signature, record.spec, record.batch_bucket);
          const auto match = std::ranges::find(back, record.variant, &MeasurementRecord::variant);
          if (match == back.end() || !same_measurement(*match, record)) ++failures;
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
