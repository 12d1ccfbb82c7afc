// Small agreements over a group, built on its collectives: used where every rank must take the
// same branch (give up together, size a cache alike), so none waits in a collective for a rank
// that went another way.
#pragma once

#include <algorithm>
#include <vector>

#include "comm/communicator.h"

namespace shardwise {

// True on every rank when any rank failed.
inline bool any_rank_failed(Communicator& comm, bool failed) {
  float flag = failed ? 1.0f : 0.0f;
  comm.all_reduce_sum(&flag, 1);
  return flag > 0;
}

// The smallest `value` over the group (exact for |value| < 2^24: it travels as a float).
inline int group_min(Communicator& comm, int value) {
  if (comm.size() == 1) return value;
  std::vector<float> all(comm.size());
  std::vector<std::size_t> counts(comm.size(), 1);
  const float mine = static_cast<float>(value);
  comm.all_gather(&mine, counts, all.data());
  return static_cast<int>(*std::min_element(all.begin(), all.end()));
}

}  // namespace shardwise
