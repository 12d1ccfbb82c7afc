// The CPU matmul on every instruction set this machine has (the others skip, saying so),
// every weight type, packed and row-major (read in place), at odd sizes and on both sides of
// the decode/prefill switch (8 input rows): against a double-precision product of the weights
// as stored and of the inputs as that path sees them (bf16-rounded on AVX-512,
// int8-quantised), and every vector path against the scalar one.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/dtype.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/random.h"

namespace shardwise {
namespace {

using cpu::CpuIsa;
using cpu::PackedMatrix;
using cpu::WeightMatrix;
using cpu::WeightType;
using testing::Tolerance;

struct Shape {
  int m, n, k;
};

// Odd sizes on both sides of each switch (matmul.h): 4 input rows (AMX from there, where it
// is on), 8 (one row tile), the row kernels' limit (16 on AVX2, 64 on AVX-512) past which
// row-major weights are packed on the fly; k > 512 with packing crosses the input blocking of
// prefill tiles, and n x k of 2100 bf16 inputs spans several of the row kernels' 256 KiB
// weight blocks; k a multiple of 32 lets AMX read whole 16-row groups in place (the others it
// copies), m past 16 and 32 pairs of input tiles.
const Shape kShapes[] = {{1, 1, 1},    {1, 17, 65},   {2, 64, 34},    {3, 33, 250}, {4, 33, 32},
                         {5, 100, 96}, {8, 70, 130},  {13, 129, 200}, {16, 40, 70}, {19, 129, 2100},
                         {21, 77, 96}, {37, 50, 515}, {40, 50, 64},   {64, 24, 33}, {70, 33, 100}};

const WeightType kTypes[] = {WeightType::kF32, WeightType::kF16, WeightType::kBF16,
                             WeightType::kInt8};

PackedMatrix pack_f32(const std::vector<float>& weight, int n, int k, WeightType type) {
  const cpu::MatrixRows rows{reinterpret_cast<const std::byte*>(weight.data()), DType::kF32, n, k};
  return PackedMatrix::pack({&rows, 1}, k, type);
}

// A random weight in the form under test: packed from fp32, or row-major in the type's own
// storage (a tensor as a checkpoint holds it), which `storage` keeps alive.
struct TestWeight {
  std::vector<std::uint16_t> storage16;
  std::vector<float> storage32;
  WeightMatrix matrix;
};

void make_weight(TestWeight& t, const std::vector<float>& weight, int n, int k, WeightType type,
                 bool packed) {
  if (packed || type == WeightType::kInt8) {
    t.matrix = WeightMatrix::packed(pack_f32(weight, n, k, type));
    return;
  }
  const std::byte* data = reinterpret_cast<const std::byte*>(weight.data());
  DType dtype = DType::kF32;
  if (type != WeightType::kF32) {
    dtype = type == WeightType::kBF16 ? DType::kBF16 : DType::kF16;
    for (float value : weight) {
      t.storage16.push_back(type == WeightType::kBF16 ? f32_to_bf16(value) : f32_to_f16(value));
    }
    data = reinterpret_cast<const std::byte*>(t.storage16.data());
  }
  t.matrix = WeightMatrix::row_major({cpu::MatrixRows{data, dtype, n, k}}, k);
}

// What the int8 path does to each block of 32 inputs (matmul.h): symmetric, fp32 scale.
std::vector<float> quantized_inputs(const std::vector<float>& in, int m, int k) {
  std::vector<float> out(in.size());
  for (int i = 0; i < m; ++i) {
    for (int begin = 0; begin < k; begin += 32) {
      const int end = std::min(begin + 32, k);
      float max_abs = 0;
      for (int j = begin; j < end; ++j) max_abs = std::max(max_abs, std::fabs(in[i * k + j]));
      const float d = max_abs / 127.0f, inverse = d > 0 ? 1.0f / d : 0.0f;
      for (int j = begin; j < end; ++j)
        out[i * k + j] = std::nearbyint(in[i * k + j] * inverse) * d;
    }
  }
  return out;
}

// The inputs as the path multiplies them.
std::vector<float> effective_inputs(const std::vector<float>& in, int m, int k, WeightType type,
                                    CpuIsa isa) {
  if (type == WeightType::kInt8) return quantized_inputs(in, m, k);
  if (type == WeightType::kBF16 && isa == CpuIsa::kAvx512) {
    std::vector<float> rounded(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) rounded[i] = bf16_to_f32(f32_to_bf16(in[i]));
    return rounded;
  }
  return in;
}

template <typename Matrix>
std::vector<float> reference(const std::vector<float>& in, const Matrix& w, int m) {
  std::vector<float> out(static_cast<std::size_t>(m) * w.rows());
  for (int i = 0; i < m; ++i) {
    for (int n = 0; n < w.rows(); ++n) {
      double sum = 0;
      for (int j = 0; j < w.cols(); ++j) sum += double(in[i * w.cols() + j]) * w.at(n, j);
      out[i * w.rows() + n] = static_cast<float>(sum);
    }
  }
  return out;
}

std::vector<float> run(const std::vector<float>& in, int m, const WeightMatrix& w, CpuIsa isa) {
  std::vector<float> out(static_cast<std::size_t>(m) * w.rows(), NAN);
  cpu::matmul(out.data(), in.data(), m, w, isa);
  return out;
}

// A path of the matmul: an instruction set, and on AVX-512 with or without AMX tiles (which
// take bf16 row-major weights from 4 input rows where the CPU has them).
struct MatmulPath {
  CpuIsa isa;
  bool amx;
};

class MatmulTest : public ::testing::TestWithParam<MatmulPath> {
 protected:
  void SetUp() override {
    if (!cpu::cpu_supports(GetParam().isa)) {
      GTEST_SKIP() << "this CPU lacks " << cpu::cpu_isa_name(GetParam().isa) << " ("
                   << cpu::cpu_description() << ")";
    }
    if (GetParam().amx && !cpu::amx_bf16_usable()) {
      GTEST_SKIP() << "this CPU (or its kernel) gives no AMX-BF16 (" << cpu::cpu_description()
                   << ")";
    }
    cpu::allow_amx(GetParam().amx);
  }
  void TearDown() override { cpu::allow_amx(true); }
  CpuIsa isa() const { return GetParam().isa; }
};

TEST_P(MatmulTest, MatchesDoubleReferenceOnOddSizes) {
  for (const bool packed : {true, false}) {
    for (WeightType type : kTypes) {
      for (const Shape& s : kShapes) {
        std::mt19937 rng(s.m * 7919 + s.n * 31 + s.k);
        const auto in = testing::random_normal(static_cast<std::size_t>(s.m) * s.k, rng);
        const auto weight = testing::random_normal(static_cast<std::size_t>(s.n) * s.k, rng);
        TestWeight w;
        make_weight(w, weight, s.n, s.k, type, packed);
        const auto expected = reference(effective_inputs(in, s.m, s.k, type, isa()), w.matrix, s.m);
        EXPECT_TRUE(testing::close_by_relative_error(run(in, s.m, w.matrix, isa()), expected,
                                                     Tolerance::kF32Kernel))
            << cpu::weight_type_name(type) << (packed ? " packed" : " row-major") << " m=" << s.m
            << " n=" << s.n << " k=" << s.k;
      }
    }
  }
}

// Row-major parts stacked by rows (q|k|v read in place), each a column slice of a wider
// tensor (a row-parallel rank's share), on both the decode and the prefill path; with 64
// inputs, AMX reads the 16-row groups that lie in one part in place.
TEST_P(MatmulTest, RowMajorPartsAndColumnSlices) {
  for (const int k : {37, 64}) {
    const int wide = k + 13, offset = 6;
    std::mt19937 rng(17 + k);
    std::vector<std::vector<std::uint16_t>> tensors;
    std::vector<cpu::MatrixRows> parts;
    for (int rows : {19, 5, 40}) {
      auto values = testing::random_normal(static_cast<std::size_t>(rows) * wide, rng);
      tensors.emplace_back();
      for (float value : values) tensors.back().push_back(f32_to_bf16(value));
      parts.push_back({reinterpret_cast<const std::byte*>(tensors.back().data() + offset),
                       DType::kBF16, rows, wide});
    }
    const WeightMatrix w = WeightMatrix::row_major(parts, k);
    ASSERT_EQ(w.rows(), 64);
    for (int m : {3, 11, 40}) {
      const auto in = testing::random_normal(static_cast<std::size_t>(m) * k, rng);
      const auto expected = reference(effective_inputs(in, m, k, WeightType::kBF16, isa()), w, m);
      EXPECT_TRUE(
          testing::close_by_relative_error(run(in, m, w, isa()), expected, Tolerance::kF32Kernel))
          << "m=" << m << " k=" << k;
    }
  }
}

// The integer sums are exact on every path, so only the fp32 sum of the blocks' scaled
// products may differ (by rounding, in the same order).
TEST_P(MatmulTest, Int8EqualsTheScalarPath) {
  for (const Shape& s : kShapes) {
    std::mt19937 rng(s.m + s.n + s.k);
    const auto in = testing::random_normal(static_cast<std::size_t>(s.m) * s.k, rng);
    const auto weight = testing::random_normal(static_cast<std::size_t>(s.n) * s.k, rng);
    const WeightMatrix w = WeightMatrix::packed(pack_f32(weight, s.n, s.k, WeightType::kInt8));
    EXPECT_TRUE(testing::close_by_relative_error(run(in, s.m, w, isa()),
                                                 run(in, s.m, w, CpuIsa::kScalar), 1e-6))
        << "m=" << s.m << " n=" << s.n << " k=" << s.k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllIsas, MatmulTest,
    ::testing::Values(MatmulPath{CpuIsa::kScalar, false}, MatmulPath{CpuIsa::kAvx2, false},
                      MatmulPath{CpuIsa::kAvx512, false}, MatmulPath{CpuIsa::kAvx512, true}),
    [](const auto& info) {
      return std::string(info.param.amx ? "amx" : cpu::cpu_isa_name(info.param.isa));
    });

// The precision each type keeps of fp32 weights, on normal random data: the packed values
// against the originals, and the product against the fp32 one.
TEST(PackedMatrix, KeepsEachTypesPrecision) {
  const int n = 45, k = 77;
  std::mt19937 rng(3);
  const auto weight = testing::random_normal(n * k, rng);
  const auto in = testing::random_normal(k, rng);
  const PackedMatrix exact = pack_f32(weight, n, k, WeightType::kF32);
  const auto fp32_product = reference(in, exact, 1);
  // Round to nearest: bf16 keeps 8 significant bits (relative error <= 2^-8), fp16 11
  // (<= 2^-11, above its subnormals: |w| >= 0.01 here); int8 per block of 32 is off by at most
  // max|w| / 254, about 1.5% of a normal value's scale.
  const std::pair<WeightType, double> bounds[] = {{WeightType::kF32, 0},
                                                  {WeightType::kF16, 1.0 / 2048},
                                                  {WeightType::kBF16, 1.0 / 256},
                                                  {WeightType::kInt8, 0.02}};
  for (auto [type, bound] : bounds) {
    const PackedMatrix packed = pack_f32(weight, n, k, type);
    double worst = 0;
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < k; ++c) {
        const double scale =
            type == WeightType::kInt8 ? 1.0 : std::max(0.01f, std::fabs(weight[r * k + c]));
        worst = std::max(worst, std::fabs(packed.at(r, c) - weight[r * k + c]) / scale);
      }
    }
    EXPECT_LE(worst, bound) << cpu::weight_type_name(type);
    // Random rounding errors of the k terms add in quadrature: well inside the element bound.
    EXPECT_TRUE(testing::close_by_relative_error(reference(in, packed, 1), fp32_product,
                                                 std::max(bound, 1e-7)))
        << cpu::weight_type_name(type);
  }
}

// Fused weights (q|k|v) are parts stacked by rows; a tensor-parallel rank's column slice is a
// row stride wider than the matrix; bf16 sources pack bit for bit.
TEST(PackedMatrix, StacksPartsAndSlicesColumns) {
  const int wide = 40, k = 23, offset = 9;
  std::vector<std::uint16_t> first(5 * wide), second(12 * wide);
  std::mt19937 rng(11);
  for (auto* part : {&first, &second}) {
    for (auto& bits : *part) bits = f32_to_bf16(std::normal_distribution<float>()(rng));
  }
  auto rows_of = [&](const std::vector<std::uint16_t>& part) {
    return cpu::MatrixRows{reinterpret_cast<const std::byte*>(part.data() + offset), DType::kBF16,
                           static_cast<int64_t>(part.size() / wide), wide};
  };
  const cpu::MatrixRows parts[] = {rows_of(first), rows_of(second)};
  const PackedMatrix packed = PackedMatrix::pack(parts, k, WeightType::kBF16);
  ASSERT_EQ(packed.rows(), 17);
  EXPECT_EQ(packed.panels(), PackedMatrix::kPanelGroup);
  for (int r = 0; r < 17; ++r) {
    const auto& part = r < 5 ? first : second;
    const int row = r < 5 ? r : r - 5;
    for (int c = 0; c < k; ++c) {
      ASSERT_EQ(packed.at(r, c), bf16_to_f32(part[row * wide + offset + c])) << r << "," << c;
    }
  }
}

}  // namespace
}  // namespace shardwise
