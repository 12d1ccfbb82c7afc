#include "models/parallel_linear.h"

#include <cstddef>

#include "common/check.h"
#include "kernels/cpu/linear.h"

namespace shardwise {

ColumnParallelLinear::ColumnParallelLinear(std::vector<float> weight, int local_out_features,
                                           int in_features)
    : weight_(std::move(weight)),
      local_out_features_(local_out_features),
      in_features_(in_features) {
  SW_CHECK(weight_.size() == static_cast<std::size_t>(local_out_features) * in_features);
}

void ColumnParallelLinear::forward(float* out, const float* in, int n_tokens) const {
  cpu::linear(out, in, weight_.data(), n_tokens, local_out_features_, in_features_);
}

RowParallelLinear::RowParallelLinear(std::vector<float> weight, int out_features,
                                     int local_in_features)
    : weight_(std::move(weight)),
      out_features_(out_features),
      local_in_features_(local_in_features) {
  SW_CHECK(weight_.size() == static_cast<std::size_t>(out_features) * local_in_features);
}

void RowParallelLinear::forward(float* out, const float* in, int n_tokens,
                                Communicator& comm) const {
  cpu::linear(out, in, weight_.data(), n_tokens, out_features_, local_in_features_);
  comm.all_reduce_sum(out, static_cast<std::size_t>(n_tokens) * out_features_);
}

}  // namespace shardwise
