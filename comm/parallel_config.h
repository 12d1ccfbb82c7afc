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

}  // namespace shardwise
