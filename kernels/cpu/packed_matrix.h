// A weight matrix W [rows = output features, cols = input features] (PyTorch nn.Linear layout)
// repacked once, at load, into the layout the CPU matmul kernels (matmul.h) stream: panels of
// 16 consecutive rows, each panel one contiguous run of memory, with the input dimension
// outermost inside it so that one 64-byte load holds 16 rows' weights for the same inputs:
//
//   kF32, kF16  panel[k][16]                   one input k for 16 rows
//   kBF16       panel[k / 2][16][2]            two inputs for 16 rows: the pairs vdpbf16ps takes
//   kInt8       panel[k / 4][16][4] as u8 = q + 128 (q in [-127, 127]), the quads vpdpbusd
//               takes, and per panel fp16 scales [k_padded / 32][16]: w = q * scale, one scale
//               per row and block of 32 inputs (the maximum |w| of the block / 127).
//
// Rows past `rows` (up to a multiple of 16 x kPanelGroup) and inputs past `cols` are zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include "common/dtype.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/weight_type.h"

namespace shardwise::cpu {

std::string_view weight_type_name(WeightType type);  // "f32", "f16", "bf16", "int8"
std::optional<WeightType> weight_type_from_name(std::string_view name);
// The weight type that keeps a stored tensor's precision: F32 -> kF32, F16 -> kF16, ...
WeightType weight_type_of(DType stored);

// `rows` consecutive rows of a stored tensor (e.g. a mmapped safetensors tensor, or the rows
// of it one tensor-parallel rank owns), each `cols` (the matrix's) elements long, row r
// starting at element r * row_stride: a stride wider than cols selects a column slice.
struct MatrixRows {
  const std::byte* data = nullptr;  // not necessarily aligned
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t row_stride = 0;  // elements
};

// The panel layout's geometry: `cols` inputs rounded up to what one step of the type's kernels
// takes (2 for bf16, 32 for int8), and the bytes of one panel of that many inputs.
int padded_inputs(WeightType type, int cols);
std::size_t panel_bytes(WeightType type, int k_padded);

// Writes `panels` consecutive panels of `type`'s layout to `out`: rows row0 .. row0 + 16 *
// panels - 1 of `parts` stacked (zero past their end), inputs [k0, k0 + count) zero-padded to
// padded_inputs(type, count); int8 scales to `scales` [panels][blocks][16]. `scratch` holds
// 16 * padded_inputs floats. What pack() does per panel, and the matmul on the fly to blocks of
// row-major weights in prefill.
void write_panels(std::span<const MatrixRows> parts, int64_t row0, int panels, int k0, int count,
                  WeightType type, std::byte* out, std::uint16_t* scales, float* scratch);

class PackedMatrix {
 public:
  static constexpr int kPanelRows = 16;
  static constexpr int kPanelGroup = 4;  // panel count is a multiple: kernels take 1, 2 or 4
  static constexpr int kInt8Block = 32;

  PackedMatrix() = default;
  // Called after each chunk of rows [begin, end) of the packed matrix is done: the source rows
  // may be released (a mmapped checkpoint's pages), so that memory holds one copy of them.
  using RowsPacked = std::function<void(int64_t begin, int64_t end)>;

  // Packs the rows of `parts` one after another (a fused q|k|v or gate|up weight), `cols`
  // inputs each, converting or quantising to `type`. Runs on the OpenMP threads.
  static PackedMatrix pack(std::span<const MatrixRows> parts, int cols, WeightType type,
                           const RowsPacked& rows_packed = {});

  WeightType type() const { return type_; }
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  int panels() const { return panels_; }
  // cols rounded up to what one step of the type's kernels takes: 2 (bf16), 32 (int8) or 1.
  int k_padded() const { return k_padded_; }
  std::size_t panel_bytes() const { return panel_bytes_; }
  const std::byte* panel(int p) const { return data_.data() + p * panel_bytes_; }
  // kInt8 only: fp16 [panels][k_padded / 32][16].
  const std::uint16_t* scales() const {
    return reinterpret_cast<const std::uint16_t*>(scales_.data());
  }
  // Memory held (padding included): what a decode step streams.
  std::size_t bytes() const { return data_.size() + scales_.size(); }

  // Element (row, col) as the kernels see it (dequantised for kInt8): for tests and lookups.
  float at(int row, int col) const;

 private:
  WeightType type_ = WeightType::kF32;
  int rows_ = 0;
  int cols_ = 0;
  int panels_ = 0;
  int k_padded_ = 0;
  std::size_t panel_bytes_ = 0;
  AlignedBuffer data_;
  AlignedBuffer scales_;
};

}  // namespace shardwise::cpu
