// The portable kernel for row-major weights: the reference of the vector ones and the fallback
// on CPUs without AVX2. One output at a time, fp32 accumulation in input order.
#include <cstring>

#include "common/dtype.h"
#include "kernels/cpu/matmul_panels.h"

namespace shardwise::cpu::detail {
namespace {

float element(WeightType type, const unsigned char* row, int k) {
  if (type == WeightType::kF32) {
    float value;
    std::memcpy(&value, row + 4 * static_cast<std::size_t>(k), sizeof(value));
    return value;
  }
  std::uint16_t bits;
  std::memcpy(&bits, row + 2 * static_cast<std::size_t>(k), sizeof(bits));
  return type == WeightType::kF16 ? f16_to_f32(bits) : bf16_to_f32(bits);
}

}  // namespace

void matmul_rows_scalar(const RowWeights& w, const PanelInput& input, float* out, int out_stride,
                        int row_begin, int row_end) {
  int first = 0;  // the part's first row in the matrix
  for (int part = 0; part < w.n_parts; first += w.part_rows[part], ++part) {
    for (int n = row_begin > first ? row_begin : first;
         n < row_end && n < first + w.part_rows[part]; ++n) {
      const unsigned char* row =
          w.data[part] + static_cast<std::size_t>(n - first) * w.stride[part];
      for (int i = 0; i < input.m; ++i) {
        const float* in = input.f32 + static_cast<std::size_t>(i) * input.f32_stride;
        float sum = 0;
        for (int k = 0; k < w.cols; ++k) sum += in[k] * element(w.type, row, k);
        out[static_cast<std::size_t>(i) * out_stride + n] = sum;
      }
    }
  }
}

}  // namespace shardwise::cpu::detail
