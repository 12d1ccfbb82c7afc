#include "kernels/cpu/matmul.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "kernels/cpu/matmul_panels.h"
#include "kernels/cpu/round_to_even.h"

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
  std::vector<std::uint32_t> pairs;
};

std::atomic<bool> amx_allowed{true};

// Input rows from which AMX takes bf16 weights from the AVX-512 row kernels (matmul_bench, 1B
// layer shapes, Xeon, 2 threads): at 4 and 8 rows the row kernels are compute-bound (75-85% and
// 45-50% of the read bandwidth) and AMX streams the weights at 80-95%; at 2 both are at it.
constexpr int kAmxMinRows = 4;

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
      const float value = k < end ? round_to_even(in[k] * inverse) : 0.0f;
      q[k] = static_cast<std::int8_t>(std::clamp(value, -127.0f, 127.0f));
      q_abs[k] = static_cast<std::uint8_t>(std::abs(q[k]));
      sum += q[k];
    }
    scale[b] = d;
    offset[b] = -128 * sum;
  }
}

// The inputs in the form the kernels for `type` on `isa` read, rows padded to k_padded.
detail::PanelInput prepare_input(const float* in, int m, WeightType type, int cols, int k_padded,
                                 CpuIsa isa, Workspace& ws) {
  detail::PanelInput input{};
  input.m = m;
  const std::size_t padded = static_cast<std::size_t>(m) * k_padded;
  if (type == WeightType::kInt8) {
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
  } else if (type == WeightType::kBF16 && isa == CpuIsa::kAvx512) {
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

detail::PanelKernel panel_kernel(CpuIsa isa) {
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

detail::RowKernel row_kernel(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return detail::matmul_rows_avx512;
    case CpuIsa::kAvx2:
      return detail::matmul_rows_avx2;
    case CpuIsa::kScalar:
      return detail::matmul_rows_scalar;
  }
  return detail::matmul_rows_scalar;
}

// [begin, end) of `count` items for this OpenMP thread: contiguous shares, so that each thread
// streams one run of the weights.
std::pair<int, int> thread_share(int count) {
  const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
  return {static_cast<int>(static_cast<int64_t>(count) * thread / threads),
          static_cast<int>(static_cast<int64_t>(count) * (thread + 1) / threads)};
}

void matmul_packed(float* out, const float* in, int m, const PackedMatrix& w, CpuIsa isa,
                   Workspace& ws) {
  const detail::PanelInput input = prepare_input(in, m, w.type(), w.cols(), w.k_padded(), isa, ws);
  const detail::PanelWeights weights{
      w.type(),        reinterpret_cast<const unsigned char*>(w.panel(0)),
      w.panel_bytes(), w.scales(),
      w.rows(),        w.cols(),
      w.k_padded()};
  const detail::PanelKernel kernel = panel_kernel(isa);
  const int groups = w.panels() / PackedMatrix::kPanelGroup;
#pragma omp parallel if (groups > 1)
  {
    const auto [begin, end] = thread_share(groups);
    if (begin < end) {
      kernel(weights, input, out, w.rows(), begin * PackedMatrix::kPanelGroup,
             end * PackedMatrix::kPanelGroup, false);
    }
  }
}

// Input rows up to which row-major weights are read in place by the row kernels, past which
// packing them on the fly for the panel kernels pays. Measured with bench/cpu/matmul_bench on
// the 1B layer shapes (Xeon, 2 threads): on AVX-512 the row kernels run at 145-185 GFLOP/s from
// 16 to 64 rows against the packed path's 80-160, and even at 128; on AVX2 they are even at 16
// rows and behind from 32 (80 against 105 GFLOP/s).
int row_kernel_limit(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return 64;
    case CpuIsa::kAvx2:
      return 16;
    case CpuIsa::kScalar:
      return detail::kMaxRowInputs;
  }
  return detail::kMaxRowInputs;
}

detail::RowWeights row_weights(const WeightMatrix& w) {
  detail::RowWeights weights{};
  weights.type = w.type();
  weights.cols = w.cols();
  SW_CHECK(w.parts().size() <= detail::kMaxRowParts);
  for (const MatrixRows& part : w.parts()) {
    const int p = weights.n_parts++;
    weights.data[p] = reinterpret_cast<const unsigned char*>(part.data);
    weights.stride[p] = part.row_stride * dtype_size(part.dtype);
    weights.part_rows[p] = static_cast<int>(part.rows);
  }
  return weights;
}

// Decode and small batches: each thread reads its share of the rows once, in place; with more
// than one tile of inputs, block by block (matmul_row_tiling.h), each block reused from cache.
void matmul_rows(float* out, const detail::PanelInput& input, const WeightMatrix& w, CpuIsa isa) {
  const detail::RowWeights weights = row_weights(w);
  const detail::RowKernel kernel = row_kernel(isa);
#pragma omp parallel if (w.rows() >= 64)
  {
    const auto [begin, end] = thread_share(w.rows());
    if (begin < end) kernel(weights, input, out, w.rows(), begin, end);
  }
}

// Prefill: row-major weights are packed on the fly, one block of 4 panels x 512 inputs at a
// time into a buffer of the thread's, for the panel kernels. Each block is read from memory
// once and reused from cache by every input row tile.
void matmul_blocks(float* out, const detail::PanelInput& input, const WeightMatrix& w, CpuIsa isa) {
  constexpr int kRows = PackedMatrix::kPanelRows * PackedMatrix::kPanelGroup;
  constexpr int kInputs = 512;
  const detail::PanelKernel kernel = panel_kernel(isa);
  const int groups = (w.rows() + kRows - 1) / kRows;
#pragma omp parallel
  {
    thread_local std::vector<std::byte> block;
    thread_local std::vector<float> scratch;
    const auto [begin, end] = thread_share(groups);
    for (int group = begin; group < end; ++group) {
      for (int k0 = 0; k0 < w.cols(); k0 += kInputs) {
        const int count = std::min(kInputs, w.cols() - k0);
        const int k_padded = padded_inputs(w.type(), count);
        const std::size_t bytes = panel_bytes(w.type(), k_padded);
        write_panels(w.parts(), int64_t{group} * kRows, PackedMatrix::kPanelGroup, k0, count,
                     w.type(), sized(block, bytes * PackedMatrix::kPanelGroup), nullptr,
                     sized(scratch, static_cast<std::size_t>(k_padded) * PackedMatrix::kPanelRows));
        const detail::PanelWeights weights{w.type(),
                                           reinterpret_cast<const unsigned char*>(block.data()),
                                           bytes,
                                           nullptr,
                                           w.rows() - group * kRows,
                                           count,
                                           k_padded};
        detail::PanelInput shifted = input;
        if (shifted.bf16 != nullptr) shifted.bf16 += k0;
        if (shifted.f32 != nullptr) shifted.f32 += k0;
        kernel(weights, shifted, out + group * kRows, w.rows(), 0, PackedMatrix::kPanelGroup,
               k0 > 0);
      }
    }
  }
}

// bf16 weights against 4 or more input rows on a CPU with AMX: the inputs as
// bf16 pairs (AmxInput), 16 rows at a time so that each pair of inputs fills one 64-byte line;
// the threads split the weights in groups of 32 rows, the two tiles of a step.
void matmul_amx(float* out, const float* in, int m, const WeightMatrix& w, Workspace& ws) {
  constexpr int kRowsPerLine = 16, kRowsPerStep = 32, kInputsPerChunk = 512;
  const int cols = w.cols();
  const int k_padded = (cols + 31) / 32 * 32;
  const int m_padded = (m + kRowsPerLine - 1) / kRowsPerLine * kRowsPerLine;
  std::uint32_t* pairs = sized(ws.pairs, static_cast<std::size_t>(k_padded / 2) * m_padded);
  const int lines = m_padded / kRowsPerLine,
            chunks = (k_padded / 2 + kInputsPerChunk - 1) / kInputsPerChunk;
#pragma omp parallel for collapse(2) if (lines * chunks > 1)
  for (int line = 0; line < lines; ++line) {
    for (int chunk = 0; chunk < chunks; ++chunk) {
      const int j_end = std::min((chunk + 1) * kInputsPerChunk, k_padded / 2);
      for (int j = chunk * kInputsPerChunk; j < j_end; ++j) {
        std::uint32_t* pair = pairs + static_cast<std::size_t>(j) * m_padded + line * kRowsPerLine;
        for (int r = 0; r < kRowsPerLine; ++r) {
          const int i = line * kRowsPerLine + r, k = 2 * j;
          const float* row = in + static_cast<std::size_t>(i) * cols;
          const std::uint32_t low = i < m && k < cols ? f32_to_bf16(row[k]) : 0;
          const std::uint32_t high = i < m && k + 1 < cols ? f32_to_bf16(row[k + 1]) : 0;
          pair[r] = low | high << 16;
        }
      }
    }
  }
  const detail::RowWeights weights = row_weights(w);
  const detail::AmxInput input{pairs, m, m_padded, k_padded};
  const int groups = (w.rows() + kRowsPerStep - 1) / kRowsPerStep;
#pragma omp parallel if (groups > 1)
  {
    const auto [begin, end] = thread_share(groups);
    if (begin < end) {
      detail::matmul_rows_amx(weights, input, out, w.rows(), begin * kRowsPerStep,
                              std::min(end * kRowsPerStep, w.rows()));
    }
  }
}

}  // namespace

void allow_amx(bool allowed) { amx_allowed = allowed; }

bool amx_in_use() { return amx_allowed && amx_bf16_usable(); }

void matmul(float* out, const float* in, int m, const WeightMatrix& w, CpuIsa isa) {
  if (m <= 0) return;
  SW_CHECK(cpu_supports(isa));
  thread_local Workspace workspace;
  if (w.is_packed()) return matmul_packed(out, in, m, w.packed_matrix(), isa, workspace);
  if (w.type() == WeightType::kBF16 && isa == CpuIsa::kAvx512 && m >= kAmxMinRows && amx_in_use()) {
    return matmul_amx(out, in, m, w, workspace);
  }
  const detail::PanelInput input =
      prepare_input(in, m, w.type(), w.cols(), padded_inputs(w.type(), w.cols()), isa, workspace);
  if (m <= row_kernel_limit(isa)) {
    matmul_rows(out, input, w, isa);
  } else {
    matmul_blocks(out, input, w, isa);
  }
}

}  // namespace shardwise::cpu
