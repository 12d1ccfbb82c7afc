#include <cstring>

#include "comm/communicator.h"

namespace shardwise {

void SoloCommunicator::all_gather(const float* send, std::span<const std::size_t> counts,
                                  float* recv) {
  if (recv != send) std::memcpy(recv, send, counts[0] * sizeof(float));
}

}  // namespace shardwise
