#include "kernels/cpu/packed_matrix.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

#include "common/check.h"
#include "kernels/cpu/round_to_even.h"

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
        static_cast<std::int8_t>(std::clamp(round_to_even(values[i] * inverse), -127.0f, 127.0f));
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

PackedMatrix PackedMatrix::pack(std::span<const MatrixRows> parts, int cols, WeightType type,
                                const RowsPacked& rows_packed) {
  PackedMatrix packed;
  packed.type_ = type;
  packed.cols_ = cols;
  for (const MatrixRows& part : parts) {
    SW_CHECK(part.row_stride >= cols);
    packed.rows_ += static_cast<int>(part.rows);
  }
  SW_CHECK(packed.rows_ > 0 && cols > 0);
  packed.panels_ = round_up(round_up(packed.rows_, kRows) / kRows, kPanelGroup);
  packed.k_padded_ = padded_inputs(type, cols);
  packed.panel_bytes_ = cpu::panel_bytes(type, packed.k_padded_);
  packed.data_ = AlignedBuffer(packed.panel_bytes_ * packed.panels_);
  if (type == WeightType::kInt8) {
    packed.scales_ =
        AlignedBuffer(sizeof(std::uint16_t) * packed.panels_ * (packed.k_padded_ / kBlock) * kRows);
  }
  // Chunks of 256 panels (4096 rows, ~16 MB of a bf16 source at hidden 2048).
  constexpr int kChunkPanels = 256;
  std::vector<std::vector<float>> scratch(omp_get_max_threads());
  for (int first = 0; first < packed.panels_; first += kChunkPanels) {
    const int last = std::min(first + kChunkPanels, packed.panels_);
#pragma omp parallel for schedule(static)
    for (int p = first; p < last; ++p) {
      auto& rows = scratch[omp_get_thread_num()];
      rows.resize(static_cast<std::size_t>(packed.k_padded_) * kRows);
      auto* scales = type == WeightType::kInt8
                         ? reinterpret_cast<std::uint16_t*>(packed.scales_.data()) +
                               static_cast<std::size_t>(p) * (packed.k_padded_ / kBlock) * kRows
                         : nullptr;
      write_panels(parts, int64_t{p} * kRows, 1, 0, cols, type,
                   packed.data_.data() + p * packed.panel_bytes_, scales, rows.data());
    }
    if (rows_packed) {
      rows_packed(std::min<int64_t>(int64_t{first} * kRows, packed.rows_),
                  std::min<int64_t>(int64_t{last} * kRows, packed.rows_));
    }
  }
  return packed;
}

namespace {

// The stored type that `type` keeps bit for bit, if any.
std::optional<DType> stored_dtype(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return DType::kF32;
    case WeightType::kF16:
      return DType::kF16;
    case WeightType::kBF16:
      return DType::kBF16;
    case WeightType::kInt8:
      return std::nullopt;
  }
  return std::nullopt;
}

// out[lane][16] = rows[r][lane]: the panel layout for types stored as they are, where a lane is
// one element (f32, f16) or one pair of bf16 elements. `rows` holds 16 zero-padded rows.
template <typename Lane>
void interleave(Lane* out, const Lane* rows, int lanes) {
  for (int lane = 0; lane < lanes; ++lane) {
    for (int r = 0; r < kRows; ++r) out[lane * kRows + r] = rows[r * lanes + lane];
  }
}

// Writes one panel: rows row0 .. row0 + 15 of `parts` (zero past their end), inputs
// [k0, k0 + count) zero-padded to k_padded, in `type`'s layout.
void write_panel(std::span<const MatrixRows> parts, int64_t row0, int k0, int count, int k_padded,
                 WeightType type, std::byte* out, std::uint16_t* scales, float* scratch) {
  const MatrixRows* sources[kRows] = {};
  const std::byte* row_data[kRows] = {};
  // Panels of padding only (past the matrix) count as stored when the type has a stored form.
  bool stored = stored_dtype(type).has_value();
  for (int r = 0; r < kRows; ++r) {
    int64_t row = row0 + r;
    for (const MatrixRows& part : parts) {
      if (row < part.rows) {
        sources[r] = &part;
        row_data[r] = part.data + (row * part.row_stride + k0) * dtype_size(part.dtype);
        stored = stored && stored_dtype(type) == part.dtype;
        break;
      }
      row -= part.rows;
    }
  }
  if (stored) {
    const std::size_t element = dtype_size(*stored_dtype(type));
    const std::size_t row_bytes = element * k_padded;
    auto* rows = reinterpret_cast<std::byte*>(scratch);
    std::fill(rows, rows + row_bytes * kRows, std::byte{0});
    for (int r = 0; r < kRows; ++r) {
      if (row_data[r] != nullptr) std::memcpy(rows + r * row_bytes, row_data[r], element * count);
    }
    // bf16 pairs and f32 elements are 4-byte lanes; f16 elements 2-byte ones.
    if (type == WeightType::kF16) {
      interleave(reinterpret_cast<std::uint16_t*>(out),
                 reinterpret_cast<const std::uint16_t*>(rows), k_padded);
    } else {
      interleave(reinterpret_cast<std::uint32_t*>(out),
                 reinterpret_cast<const std::uint32_t*>(rows), static_cast<int>(row_bytes / 4));
    }
    return;
  }
  std::fill(scratch, scratch + static_cast<std::size_t>(k_padded) * kRows, 0.0f);
  for (int r = 0; r < kRows; ++r) {
    if (sources[r] != nullptr) {
      convert_to_f32(scratch + static_cast<std::size_t>(r) * k_padded, row_data[r],
                     sources[r]->dtype, count);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    const float* values = scratch + static_cast<std::size_t>(r) * k_padded;
    switch (type) {
      case WeightType::kF32:
        for (int k = 0; k < k_padded; ++k)
          reinterpret_cast<float*>(out)[panel_index(type, r, k)] = values[k];
        break;
      case WeightType::kF16:
        for (int k = 0; k < k_padded; ++k)
          reinterpret_cast<std::uint16_t*>(out)[panel_index(type, r, k)] = f32_to_f16(values[k]);
        break;
      case WeightType::kBF16:
        for (int k = 0; k < k_padded; ++k)
          reinterpret_cast<std::uint16_t*>(out)[panel_index(type, r, k)] = f32_to_bf16(values[k]);
        break;
      case WeightType::kInt8: {
        std::int8_t q[kBlock];
        for (int b = 0; b < k_padded / kBlock; ++b) {
          quantize_block(values + b * kBlock, &scales[b * kRows + r], q);
          for (int i = 0; i < kBlock; ++i) {
            reinterpret_cast<std::uint8_t*>(out)[panel_index(type, r, b * kBlock + i)] =
                static_cast<std::uint8_t>(q[i] + 128);
          }
        }
        break;
      }
    }
  }
}

}  // namespace

int padded_inputs(WeightType type, int cols) { return round_up(cols, k_step(type)); }

std::size_t panel_bytes(WeightType type, int k_padded) {
  return static_cast<std::size_t>(k_padded) * kRows * element_bytes(type);
}

void write_panels(std::span<const MatrixRows> parts, int64_t row0, int panels, int k0, int count,
                  WeightType type, std::byte* out, std::uint16_t* scales, float* scratch) {
  const int k_padded = padded_inputs(type, count);
  for (int p = 0; p < panels; ++p) {
    write_panel(parts, row0 + int64_t{p} * kRows, k0, count, k_padded, type,
                out + p * panel_bytes(type, k_padded),
                scales == nullptr ? nullptr : scales + p * (k_padded / kBlock) * kRows, scratch);
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
