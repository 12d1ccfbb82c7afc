#include "kernels/cpu/weight_matrix.h"

#include "common/check.h"

namespace shardwise::cpu {

WeightMatrix WeightMatrix::row_major(std::vector<MatrixRows> parts, int cols) {
  SW_CHECK(!parts.empty() && cols > 0);
  WeightMatrix matrix;
  matrix.type_ = weight_type_of(parts.front().dtype);
  matrix.cols_ = cols;
  for (const MatrixRows& part : parts) {
    SW_CHECK(part.dtype == parts.front().dtype && part.row_stride >= cols && part.rows > 0);
    matrix.rows_ += static_cast<int>(part.rows);
  }
  matrix.parts_ = std::move(parts);
  return matrix;
}

WeightMatrix WeightMatrix::packed(PackedMatrix matrix) {
  WeightMatrix packed;
  packed.type_ = matrix.type();
  packed.rows_ = matrix.rows();
  packed.cols_ = matrix.cols();
  packed.packed_ = std::move(matrix);
  return packed;
}

std::size_t WeightMatrix::bytes() const {
  if (is_packed()) return packed_.bytes();
  return static_cast<std::size_t>(rows_) * cols_ * dtype_size(parts_.front().dtype);
}

float WeightMatrix::at(int row, int col) const {
  if (is_packed()) return packed_.at(row, col);
  SW_CHECK(row >= 0 && row < rows_ && col >= 0 && col < cols_);
  for (const MatrixRows& part : parts_) {
    if (row < part.rows) {
      float value;
      const std::size_t element = dtype_size(part.dtype);
      convert_to_f32(&value, part.data + (row * part.row_stride + col) * element, part.dtype, 1);
      return value;
    }
    row -= static_cast<int>(part.rows);
  }
  return 0;
}

}  // namespace shardwise::cpu
