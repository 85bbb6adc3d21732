// The keys of one tuning run shared among workers over one store (glq-tune --devices: a process
// per GPU), so that the run takes about 1/N of the time on N GPUs, no candidate is timed twice,
// and a worker that dies costs only the candidate it was measuring.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace glqjit {

struct SharedRunCounts {
  int taken = 0;       // keys no other worker held when this one came to them
  int waited_for = 0;  // keys another worker held first: taken once it let go
};

// Calls tune(i) for every key i of `keys` (texts naming the keys, the same in every worker),
// each while holding the key's tune lock beside the store at store_path (cache/key_lock.hpp):
// first, in order, each key no other worker holds; then, waiting for each, the keys that another
// worker held. By then such a key is finished, and tune_key finds all of it in the store and
// times nothing, or its worker died and tune_key goes on from the measurements it stored.
// Without a lock file (a read-only folder) every key is tuned here, with one warning.
SharedRunCounts for_each_shared_key(const std::string& store_path, const std::vector<std::string>& keys,
                                    const std::function<void(size_t)>& tune);

}  // namespace glqjit
