#include "kernels/cpu/linear.h"

#include <cblas.h>

namespace shardwise::cpu {

void linear(float* out, const float* in, const float* weight, int n_tokens, int out_features,
            int in_features) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tokens, out_features, in_features, 1.0f,
              in, in_features, weight, in_features, 0.0f, out, out_features);
}

}  // namespace shardwise::cpu
