#include "kernels/cpu/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "kernels/cpu/matmul_panels.h"

namespace shardwise::cpu {
namespace {

// Grow-only buffers for the prepared inputs of the calling thread: no allocation per call.
struct Workspace {
  std::vector<float> f32;
  std::vector<std::uint16_t> bf16;
  std::vector<std::int8_t> q;
  std::vector<std::uint8_t> q_abs;
  std::vector<float> q_scale;
  std::vector<std::int32_t> q_offset;
};

template <typename T>
T* sized(std::vector<T>& buffer, std::size_t size) {
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

void quantize_row(const float* in, int cols, int blocks, std::int8_t* q, std::uint8_t* q_abs,
                  float* scale, std::int32_t* offset) {
  constexpr int kBlock = PackedMatrix::kInt8Block;
  for (int b = 0; b < blocks; ++b) {
    const int begin = b * kBlock, end = std::min(begin + kBlock, cols);
    float max_abs = 0;
    for (int k = begin; k < end; ++k) max_abs = std::max(max_abs, std::fabs(in[k]));
    const float d = max_abs / 127.0f;
    const float inverse = d > 0 ? 1.0f / d : 0.0f;
    std::int32_t sum = 0;
    for (int k = begin; k < begin + kBlock; ++k) {
      const float value = k < end ? std::nearbyint(in[k] * inverse) : 0.0f;
      q[k] = static_cast<std::int8_t>(std::clamp(value, -127.0f, 127.0f));
      q_abs[k] = static_cast<std::uint8_t>(std::abs(q[k]));
      sum += q[k];
    }
    scale[b] = d;
    offset[b] = -128 * sum;
  }
}

detail::PanelInput prepare_input(const float* in, int m, const PackedMatrix& w, CpuIsa isa,
                                 Workspace& ws) {
  detail::PanelInput input{};
  input.m = m;
  const int cols = w.cols(), k_padded = w.k_padded();
  const std::size_t padded = static_cast<std::size_t>(m) * k_padded;
  if (w.type() == WeightType::kInt8) {
    const int blocks = k_padded / PackedMatrix::kInt8Block;
    input.q = sized(ws.q, padded);
    input.q_abs = sized(ws.q_abs, padded);
    input.q_stride = k_padded;
    input.q_scale = sized(ws.q_scale, static_cast<std::size_t>(m) * blocks);
    input.q_offset = sized(ws.q_offset, static_cast<std::size_t>(m) * blocks);
    input.q_blocks = blocks;
#pragma omp parallel for if (m >= 8)
    for (int i = 0; i < m; ++i) {
      const std::size_t row = static_cast<std::size_t>(i) * k_padded;
      quantize_row(in + static_cast<std::size_t>(i) * cols, cols, blocks, ws.q.data() + row,
                   ws.q_abs.data() + row, ws.q_scale.data() + i * blocks,
                   ws.q_offset.data() + i * blocks);
    }
  } else if (w.type() == WeightType::kBF16 && isa == CpuIsa::kAvx512) {
    std::uint16_t* rounded = sized(ws.bf16, padded);
#pragma omp parallel for if (m >= 8)
    for (int i = 0; i < m; ++i) {
      const float* row = in + static_cast<std::size_t>(i) * cols;
      std::uint16_t* out = rounded + static_cast<std::size_t>(i) * k_padded;
      for (int k = 0; k < cols; ++k) out[k] = f32_to_bf16(row[k]);
      std::fill(out + cols, out + k_padded, std::uint16_t{0});
    }
    input.bf16 = rounded;
    input.bf16_stride = k_padded;
  } else if (cols == k_padded) {
    input.f32 = in;
    input.f32_stride = cols;
  } else {
    float* copy = sized(ws.f32, padded);
    for (int i = 0; i < m; ++i) {
      std::memcpy(copy + static_cast<std::size_t>(i) * k_padded,
                  in + static_cast<std::size_t>(i) * cols, sizeof(float) * cols);
      std::fill(copy + static_cast<std::size_t>(i) * k_padded + cols,
                copy + static_cast<std::size_t>(i + 1) * k_padded, 0.0f);
    }
    input.f32 = copy;
    input.f32_stride = k_padded;
  }
  return input;
}

detail::PanelKernel kernel_for(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return detail::matmul_panels_avx512;
    case CpuIsa::kAvx2:
      return detail::matmul_panels_avx2;
    case CpuIsa::kScalar:
      return detail::matmul_panels_scalar;
  }
  return detail::matmul_panels_scalar;
}

}  // namespace

void matmul(float* out, const float* in, int m, const PackedMatrix& w, CpuIsa isa) {
  if (m <= 0) return;
  SW_CHECK(cpu_supports(isa));
  thread_local Workspace workspace;
  const detail::PanelInput input = prepare_input(in, m, w, isa, workspace);
  const detail::PanelWeights weights{
      w.type(),        reinterpret_cast<const unsigned char*>(w.panel(0)),
      w.panel_bytes(), w.scales(),
      w.rows(),        w.cols(),
      w.k_padded()};
  const detail::PanelKernel kernel = kernel_for(isa);
  const int groups = w.panels() / PackedMatrix::kPanelGroup;
#pragma omp parallel if (groups > 1)
  {
    // Contiguous shares of whole panel groups: each thread streams one run of the weights.
    const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
    const int begin = static_cast<int>(static_cast<int64_t>(groups) * thread / threads);
    const int end = static_cast<int>(static_cast<int64_t>(groups) * (thread + 1) / threads);
    if (begin < end) {
      kernel(weights, input, out, w.rows(), begin * PackedMatrix::kPanelGroup,
             end * PackedMatrix::kPanelGroup);
    }
  }
}

}  // namespace shardwise::cpu
