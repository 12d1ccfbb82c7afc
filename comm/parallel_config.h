// Rank arithmetic has one home (STYLE.md): which slice of a tensor-parallel split a rank owns.
#pragma once

#include <cstdint>

namespace shardwise {

// This process's place in its tensor-parallel group.
struct TensorParallel {
  int rank = 0;  // 0 .. size-1; rank 0 is the group's leader
  int size = 1;  // the TP degree, e.g. 8 for a 70B model on 8 GPUs
};

// A half-open range [begin, end) of a dimension.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// Splits `total` as evenly as possible: rank r gets [total*r/size, total*(r+1)/size).
inline Range split_range(int64_t total, const TensorParallel& tp) {
  return {total * tp.rank / tp.size, total * (tp.rank + 1) / tp.size};
}

// The same with every boundary between ranks rounded to a multiple of `granularity` (the
// nearest one), e.g. so that blocks of a quantised weight never straddle two ranks. Real
// shapes are multiples already (FFN 11008 / 2 = 5504 = 172 x 32); odd ones split unevenly.
// Shares smaller than `granularity` fall back to the even split (no rank may get nothing).
inline Range split_range(int64_t total, const TensorParallel& tp, int64_t granularity) {
  if (total / tp.size < granularity) return split_range(total, tp);
  auto boundary = [&](int rank) -> int64_t {
    if (rank == 0) return 0;
    if (rank == tp.size) return total;
    const int64_t rounded = (total * rank / tp.size + granularity / 2) / granularity * granularity;
    return rounded < total ? rounded : total;
  };
  return {boundary(tp.rank), boundary(tp.rank + 1)};
}

// Where this process sits in the launch: world = num_replicas x tp_size ranks, and each run of
// tp_size consecutive world ranks forms one tensor-parallel group (one model replica).
struct ParallelConfig {
  int world_rank = 0;  // e.g. 5 of 8
  int world_size = 1;  // e.g. 8 = 2 replicas x TP 4
  int tp_size = 1;     // e.g. 4
  int local_rank = 0;  // rank among the processes on this host: picks the GPU, e.g. 1
  int local_size = 1;  // processes of this job on this host, e.g. 8

  int replica() const { return world_rank / tp_size; }
  int num_replicas() const { return world_size / tp_size; }
  TensorParallel tp() const { return {world_rank % tp_size, tp_size}; }
  bool is_leader() const { return tp().rank == 0; }
  // CPU threads for one rank when the host's `cores` are shared evenly by its ranks.
  int cpu_threads_per_rank(int cores) const {
    return cores / local_size > 1 ? cores / local_size : 1;
  }
};

}  // namespace shardwise
