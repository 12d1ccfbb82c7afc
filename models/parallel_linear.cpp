#include "models/parallel_linear.h"

#include "kernels/cpu/matmul.h"

namespace shardwise {

ColumnParallelLinear::ColumnParallelLinear(cpu::WeightMatrix weight, cpu::CpuIsa isa)
    : weight_(std::move(weight)), isa_(isa) {}

void ColumnParallelLinear::forward(float* out, const float* in, int n_tokens) const {
  cpu::matmul(out, in, n_tokens, weight_, isa_);
}

RowParallelLinear::RowParallelLinear(cpu::WeightMatrix weight, cpu::CpuIsa isa)
    : weight_(std::move(weight)), isa_(isa) {}

void RowParallelLinear::forward(float* out, const float* in, int n_tokens,
                                Communicator& comm) const {
  cpu::matmul(out, in, n_tokens, weight_, isa_);
  comm.all_reduce_sum(out, static_cast<std::size_t>(n_tokens) * weight_.rows());
}

}  // namespace shardwise
