#include "kernels/cpu/packed_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/check.h"

namespace shardwise::cpu {
namespace {

constexpr int kRows = PackedMatrix::kPanelRows;
constexpr int kBlock = PackedMatrix::kInt8Block;

int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

int k_step(WeightType type) {
  switch (type) {
    case WeightType::kBF16:
      return 2;
    case WeightType::kInt8:
      return kBlock;
    case WeightType::kF32:
    case WeightType::kF16:
      return 1;
  }
  return 1;
}

std::size_t element_bytes(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return 4;
    case WeightType::kF16:
    case WeightType::kBF16:
      return 2;
    case WeightType::kInt8:
      return 1;
  }
  return 4;
}

// Where element (row r of the panel, input k) lives inside a panel, in elements.
std::size_t panel_index(WeightType type, int r, int k) {
  switch (type) {
    case WeightType::kBF16:
      return static_cast<std::size_t>(k / 2) * 2 * kRows + r * 2 + k % 2;
    case WeightType::kInt8:
      return static_cast<std::size_t>(k / 4) * 4 * kRows + r * 4 + k % 4;
    case WeightType::kF32:
    case WeightType::kF16:
      return static_cast<std::size_t>(k) * kRows + r;
  }
  return 0;
}

// Symmetric int8 of one block: the scale is stored in fp16 and the values are rounded against
// the stored scale, so that q * scale is what the kernels multiply.
void quantize_block(const float* values, std::uint16_t* scale, std::int8_t* q) {
  float max_abs = 0;
  for (int i = 0; i < kBlock; ++i) max_abs = std::max(max_abs, std::fabs(values[i]));
  *scale = f32_to_f16(max_abs / 127.0f);
  const float stored = f16_to_f32(*scale);
  const float inverse = stored > 0 ? 1.0f / stored : 0.0f;
  for (int i = 0; i < kBlock; ++i) {
    q[i] =
        static_cast<std::int8_t>(std::clamp(std::nearbyint(values[i] * inverse), -127.0f, 127.0f));
  }
}

}  // namespace

std::string_view weight_type_name(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return "f32";
    case WeightType::kF16:
      return "f16";
    case WeightType::kBF16:
      return "bf16";
    case WeightType::kInt8:
      return "int8";
  }
  return "?";
}

std::optional<WeightType> weight_type_from_name(std::string_view name) {
  for (WeightType type :
       {WeightType::kF32, WeightType::kF16, WeightType::kBF16, WeightType::kInt8}) {
    if (name == weight_type_name(type)) return type;
  }
  return std::nullopt;
}

WeightType weight_type_of(DType stored) {
  switch (stored) {
    case DType::kF32:
      return WeightType::kF32;
    case DType::kF16:
      return WeightType::kF16;
    case DType::kBF16:
      return WeightType::kBF16;
  }
  return WeightType::kF32;
}

PackedMatrix PackedMatrix::pack(std::span<const MatrixRows> parts, int cols, WeightType type) {
  PackedMatrix packed;
  packed.type_ = type;
  packed.cols_ = cols;
  for (const MatrixRows& part : parts) {
    SW_CHECK(part.row_stride >= cols);
    packed.rows_ += static_cast<int>(part.rows);
  }
  SW_CHECK(packed.rows_ > 0 && cols > 0);
  packed.panels_ = round_up(round_up(packed.rows_, kRows) / kRows, kPanelGroup);
  packed.k_padded_ = round_up(cols, k_step(type));
  packed.panel_bytes_ = static_cast<std::size_t>(packed.k_padded_) * kRows * element_bytes(type);
  packed.data_ = AlignedBuffer(packed.panel_bytes_ * packed.panels_);
  if (type == WeightType::kInt8) {
    packed.scales_ =
        AlignedBuffer(sizeof(std::uint16_t) * packed.panels_ * (packed.k_padded_ / kBlock) * kRows);
  }
#pragma omp parallel
  {
    std::vector<float> row_buffer(static_cast<std::size_t>(packed.k_padded_) * kRows);
#pragma omp for schedule(static)
    for (int p = 0; p < packed.panels_; ++p) packed.pack_panel(parts, p, row_buffer.data());
  }
  return packed;
}

// Converts the panel's 16 rows to fp32 (zero past the matrix) in `rows_f32` [16][k_padded],
// then writes them in the type's layout.
void PackedMatrix::pack_panel(std::span<const MatrixRows> parts, int panel, float* rows_f32) {
  std::fill(rows_f32, rows_f32 + static_cast<std::size_t>(k_padded_) * kRows, 0.0f);
  for (int r = 0; r < kRows; ++r) {
    int64_t row = static_cast<int64_t>(panel) * kRows + r;
    for (const MatrixRows& part : parts) {
      if (row < part.rows) {
        const std::byte* source = part.data + row * part.row_stride * dtype_size(part.dtype);
        convert_to_f32(rows_f32 + static_cast<std::size_t>(r) * k_padded_, source, part.dtype,
                       cols_);
        break;
      }
      row -= part.rows;
    }
  }
  std::byte* out = data_.data() + panel * panel_bytes_;
  const int blocks = k_padded_ / kBlock;
  for (int r = 0; r < kRows; ++r) {
    const float* values = rows_f32 + static_cast<std::size_t>(r) * k_padded_;
    switch (type_) {
      case WeightType::kF32:
        for (int k = 0; k < k_padded_; ++k)
          reinterpret_cast<float*>(out)[panel_index(type_, r, k)] = values[k];
        break;
      case WeightType::kF16:
        for (int k = 0; k < k_padded_; ++k)
          reinterpret_cast<std::uint16_t*>(out)[panel_index(type_, r, k)] = f32_to_f16(values[k]);
        break;
      case WeightType::kBF16:
        for (int k = 0; k < k_padded_; ++k)
          reinterpret_cast<std::uint16_t*>(out)[panel_index(type_, r, k)] = f32_to_bf16(values[k]);
        break;
      case WeightType::kInt8: {
        auto* scales = reinterpret_cast<std::uint16_t*>(scales_.data()) +
                       static_cast<std::size_t>(panel) * blocks * kRows;
        std::int8_t q[kBlock];
        for (int b = 0; b < blocks; ++b) {
          quantize_block(values + b * kBlock, &scales[b * kRows + r], q);
          for (int i = 0; i < kBlock; ++i) {
            reinterpret_cast<std::uint8_t*>(out)[panel_index(type_, r, b * kBlock + i)] =
                static_cast<std::uint8_t>(q[i] + 128);
          }
        }
        break;
      }
    }
  }
}

float PackedMatrix::at(int row, int col) const {
  SW_CHECK(row >= 0 && row < rows_ && col >= 0 && col < cols_);
  const int panel = row / kRows, r = row % kRows;
  const std::byte* base = this->panel(panel);
  const std::size_t index = panel_index(type_, r, col);
  switch (type_) {
    case WeightType::kF32:
      return reinterpret_cast<const float*>(base)[index];
    case WeightType::kF16:
      return f16_to_f32(reinterpret_cast<const std::uint16_t*>(base)[index]);
    case WeightType::kBF16:
      return bf16_to_f32(reinterpret_cast<const std::uint16_t*>(base)[index]);
    case WeightType::kInt8: {
      const int blocks = k_padded_ / kBlock;
      const float scale = f16_to_f32(
          scales()[(static_cast<std::size_t>(panel) * blocks + col / kBlock) * kRows + r]);
      return (static_cast<int>(reinterpret_cast<const std::uint8_t*>(base)[index]) - 128) * scale;
    }
  }
  return 0;
}

}  // namespace shardwise::cpu
