// Moving rows between store files (DESIGN.md, Contracts: Store): an export picks what one
// deployment needs (one GPU model, one arch) into a new file to ship with it; a merge folds
// another store, say one a tuning machine filled, into this one.
#pragma once

#include <string>

#include "cache/store.hpp"

namespace glqjit {

// Empty fields match anything; a row is exported when it fits every field that is set.
// - device_signature, as the runtime writes it ("NVIDIA H200 | sm_count=132 | cc=9.0 |
//   driver=13000"): the tuning records and measurements of exactly that signature, and the
//   kernels of the arches that device runs (cc 9.0: sm_90 and sm_90a).
// - arch ("sm_90a"): the kernels of that arch, and the tuning records and measurements of the
//   devices that run it (those whose signature says cc=9.0).
struct ExportFilter {
  std::string device_signature;
  std::string arch;
};

// Rows written by an export; rows added or replaced by a merge.
struct TransferCounts {
  int kernels = 0, tuning = 0, measurements = 0;
};

// Writes a new store at `to` holding the rows of `from` that fit filter, from one consistent
// snapshot of `from`. Refused when `to` exists. The rows go to a temporary file beside `to` that
// is renamed at the end, so `to` is either absent or whole. A kernel whose cubin no longer matches
// its hash is left out with a warning. Throws Error(cache_error) naming the path and what to do.
TransferCounts export_store(Store& from, const std::string& to, const ExportFilter& filter);

// Copies every row of the store at `from` into `into`, in one transaction, so a failure leaves
// `into` unchanged (other writers of `into` wait for it meanwhile). `from` is opened read-only:
// it is never changed, and a version-1 file is read as it is. Kernels: the row `into` already has
// wins (the same digest is the same kernel); a kernel of `from` whose cubin does not match its
// hash is skipped with a warning. Tuning records and measurements: the later updated_at or
// measured_at wins, and `into` keeps its own on a tie. Throws Error(cache_error) naming the path
// and what to do.
TransferCounts merge_store(Store& into, const std::string& from);

}  // namespace glqjit
