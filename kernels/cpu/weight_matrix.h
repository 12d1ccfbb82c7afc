// A weight matrix W [rows = output features, cols = input features] (PyTorch nn.Linear layout)
// as the CPU matmul (matmul.h) takes it, in one of two forms:
//  - row-major in its stored type (f32, f16, bf16), read in place: typically straight from a
//    mmapped checkpoint, so that loading copies nothing. Parts stack by rows (a fused q|k|v or
//    gate|up weight), each with its own row stride (a tensor-parallel rank's column slice);
//  - packed at load (packed_matrix.h): int8, which is quantised then, or any type on request.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "kernels/cpu/packed_matrix.h"

namespace shardwise::cpu {

class WeightMatrix {
 public:
  WeightMatrix() = default;
  // `parts` (all of one dtype: F32, F16 or BF16) must outlive the matrix; `cols` <= each stride.
  static WeightMatrix row_major(std::vector<MatrixRows> parts, int cols);
  static WeightMatrix packed(PackedMatrix matrix);

  bool is_packed() const { return packed_.rows() > 0; }
  const PackedMatrix& packed_matrix() const { return packed_; }
  std::span<const MatrixRows> parts() const { return parts_; }
  WeightType type() const { return type_; }
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  // The bytes one pass over the matrix reads.
  std::size_t bytes() const;
  // Element (row, col) as the kernels see it: for tests.
  float at(int row, int col) const;

 private:
  std::vector<MatrixRows> parts_;
  PackedMatrix packed_;
  WeightType type_ = WeightType::kF32;
  int rows_ = 0;
  int cols_ = 0;
};

}  // namespace shardwise::cpu
