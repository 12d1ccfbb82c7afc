// The one owner of collectives (STYLE.md). Only the tensor-parallel layers call it.
// Implementations abort the process group on failure (a shard dies loudly, DESIGN.md).
#pragma once

#include <cstddef>
#include <span>

namespace shardwise {

class Communicator {
 public:
  // kTimed: the collective must finish within the communicator's timeout (every collective
  // inside a step). kIdle: may wait indefinitely (a follower waiting for the next step while
  // the replica has no work).
  enum class Wait { kTimed, kIdle };

  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In-place elementwise sum over all ranks; every rank ends with the same result.
  virtual void all_reduce_sum(float* data, std::size_t count) = 0;
  // Concatenates each rank's `send` (counts[r] floats from rank r) into `recv` in rank order.
  virtual void all_gather(const float* send, std::span<const std::size_t> counts, float* recv) = 0;
  // Copies `bytes` bytes from `root` to every rank.
  virtual void broadcast(void* data, std::size_t bytes, int root, Wait wait = Wait::kTimed) = 0;
  virtual void barrier() = 0;
};

// The group of one: every collective is the identity. Used by single-process runs.
class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(float*, std::size_t) override {}
  void all_gather(const float* send, std::span<const std::size_t> counts, float* recv) override;
  void broadcast(void*, std::size_t, int, Wait) override {}
  void barrier() override {}
};

}  // namespace shardwise
