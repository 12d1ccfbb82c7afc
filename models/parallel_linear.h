// Tensor-parallel linear layers (Megatron-style). Reading the model you can see every
// collective: it happens inside a RowParallelLinear, and nowhere else in a layer.
#pragma once

#include "comm/communicator.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/weight_matrix.h"

namespace shardwise {

// y = x · Wᵀ where this rank holds a slice of W's output rows. No communication: each rank
// produces its own slice of the output features.
class ColumnParallelLinear {
 public:
  ColumnParallelLinear() = default;
  // weight: [local_out_features, in_features], multiplied by `isa`'s kernels.
  ColumnParallelLinear(cpu::WeightMatrix weight, cpu::CpuIsa isa);

  void forward(float* out,       // [n_tokens, local_out_features]
               const float* in,  // [n_tokens, in_features]
               int n_tokens) const;
  int local_out_features() const { return weight_.rows(); }
  const cpu::WeightMatrix& weight() const { return weight_; }

 private:
  cpu::WeightMatrix weight_;  // [local_out_features, in_features]
  cpu::CpuIsa isa_ = cpu::CpuIsa::kScalar;
};

// y = x · Wᵀ where this rank holds a slice of W's input columns and of x's features; the
// partial products are summed across the group with exactly one all-reduce.
class RowParallelLinear {
 public:
  RowParallelLinear() = default;
  // weight: [out_features, local_in_features].
  RowParallelLinear(cpu::WeightMatrix weight, cpu::CpuIsa isa);

  void forward(float* out,       // [n_tokens, out_features], the same on every rank
               const float* in,  // [n_tokens, local_in_features]
               int n_tokens, Communicator& comm) const;
  const cpu::WeightMatrix& weight() const { return weight_; }

 private:
  cpu::WeightMatrix weight_;  // [out_features, local_in_features]
  cpu::CpuIsa isa_ = cpu::CpuIsa::kScalar;
};

}  // namespace shardwise
