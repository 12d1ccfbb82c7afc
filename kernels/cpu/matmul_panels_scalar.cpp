// The portable panel kernels: the reference every vector path is tested against, and the
// fallback on CPUs without AVX2. One output at a time, fp32 accumulation in input order.
#include <cstring>

#include "common/dtype.h"
#include "kernels/cpu/matmul_panels.h"

namespace shardwise::cpu::detail {
namespace {

constexpr int kRows = 16;
constexpr int kBlock = 32;

float weight_at(const PanelWeights& w, const unsigned char* panel, int r, int k) {
  switch (w.type) {
    case WeightType::kF32: {
      float value;
      std::memcpy(&value, panel + 4 * (static_cast<std::size_t>(k) * kRows + r), sizeof(value));
      return value;
    }
    case WeightType::kF16:
    case WeightType::kBF16: {
      const std::size_t index = w.type == WeightType::kF16
                                    ? static_cast<std::size_t>(k) * kRows + r
                                    : static_cast<std::size_t>(k / 2) * 2 * kRows + r * 2 + k % 2;
      std::uint16_t bits;
      std::memcpy(&bits, panel + 2 * index, sizeof(bits));
      return w.type == WeightType::kF16 ? f16_to_f32(bits) : bf16_to_f32(bits);
    }
    case WeightType::kInt8:
      break;
  }
  return 0;
}

float float_dot(const PanelWeights& w, const unsigned char* panel, int r, const float* in) {
  float sum = 0;
  for (int k = 0; k < w.cols; ++k) sum += in[k] * weight_at(w, panel, r, k);
  return sum;
}

// Sum over blocks of scale_w * scale_in * (exact int32 dot product of the block).
float int8_dot(const PanelWeights& w, int panel_index, const unsigned char* panel, int r,
               const PanelInput& input, int i) {
  const std::int8_t* q = input.q + static_cast<std::size_t>(i) * input.q_stride;
  const std::uint16_t* scales =
      w.scales + static_cast<std::size_t>(panel_index) * input.q_blocks * kRows;
  float sum = 0;
  for (int b = 0; b < input.q_blocks; ++b) {
    std::int32_t dot = 0;
    for (int k = b * kBlock; k < (b + 1) * kBlock; ++k) {
      const int stored = panel[static_cast<std::size_t>(k / 4) * 4 * kRows + r * 4 + k % 4];
      dot += (stored - 128) * q[k];
    }
    sum += static_cast<float>(dot) *
           (f16_to_f32(scales[b * kRows + r]) * input.q_scale[i * input.q_blocks + b]);
  }
  return sum;
}

}  // namespace

void matmul_panels_scalar(const PanelWeights& w, const PanelInput& input, float* out,
                          int out_stride, int panel_begin, int panel_end, bool accumulate) {
  for (int p = panel_begin; p < panel_end; ++p) {
    const unsigned char* panel = w.data + static_cast<std::size_t>(p) * w.panel_bytes;
    for (int r = 0; r < kRows && p * kRows + r < w.rows; ++r) {
      for (int i = 0; i < input.m; ++i) {
        const float dot =
            w.type == WeightType::kInt8
                ? int8_dot(w, p, panel, r, input, i)
                : float_dot(w, panel, r,
                            input.f32 + static_cast<std::size_t>(i) * input.f32_stride);
        float& result = out[static_cast<std::size_t>(i) * out_stride + p * kRows + r];
        result = accumulate ? result + dot : dot;
      }
    }
  }
}

}  // namespace shardwise::cpu::detail
