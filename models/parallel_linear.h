// Tensor-parallel linear layers (Megatron-style). Reading the model you can see every
// collective: it happens inside a RowParallelLinear, and nowhere else in a layer.
#pragma once

#include <vector>

#include "comm/communicator.h"

namespace shardwise {

// y = x · Wᵀ where this rank holds a slice of W's output rows. No communication: each rank
// produces its own slice of the output features.
class ColumnParallelLinear {
 public:
  ColumnParallelLinear() = default;
  ColumnParallelLinear(std::vector<float> weight, int local_out_features, int in_features);

  void forward(float* out,       // [n_tokens, local_out_features]
               const float* in,  // [n_tokens, in_features]
               int n_tokens) const;
  int local_out_features() const { return local_out_features_; }

 private:
  std::vector<float> weight_;  // [local_out_features, in_features]
  int local_out_features_ = 0;
  int in_features_ = 0;
};

// y = x · Wᵀ where this rank holds a slice of W's input columns and of x's features; the
// partial products are summed across the group with exactly one all-reduce.
class RowParallelLinear {
 public:
  RowParallelLinear() = default;
  RowParallelLinear(std::vector<float> weight, int out_features, int local_in_features);

  void forward(float* out,       // [n_tokens, out_features], the same on every rank
               const float* in,  // [n_tokens, local_in_features]
               int n_tokens, Communicator& comm) const;

 private:
  std::vector<float> weight_;  // [out_features, local_in_features]
  int out_features_ = 0;
  int local_in_features_ = 0;
};

}  // namespace shardwise
