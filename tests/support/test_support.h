// Shared helpers for tests: where the reference data lives, tolerances, error measures.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>

namespace shardwise::testing {

// ../shared/testdata beside the checkout (CMake option SHARDWISE_TESTDATA_DIR); the environment
// variable of that name overrides it.
std::filesystem::path testdata_dir();
// The committed default model (assets/models/stories260K) of the source tree; the environment
// variable SHARDWISE_SOURCE_DIR overrides the tree's configured location.
std::filesystem::path default_model_dir();
// A fresh, empty folder under the build tree for this test's outputs.
std::filesystem::path scratch_dir(const std::string& name);
std::string read_text_file(const std::filesystem::path& path);

// Tolerances by the precision of the computation, in one table (STYLE.md): relative L2 error
// of a result against its reference. A test that uses another value says why beside it.
struct Tolerance {
  // fp32 throughout: the HF references were computed in fp32 on the CPU; summation order
  // differences accumulate to ~1e-6 relative over a few layers.
  static constexpr double kF32 = 1e-4;
  // Single fp32 kernels against their double-precision reference.
  static constexpr double kF32Kernel = 1e-5;
  // One fp32 model sliced across tensor-parallel ranks against the same model whole: only the
  // order of the sums across ranks differs.
  static constexpr double kF32TensorParallel = 1e-5;
  // An fp32 kernel whose reference sums thousands of terms sequentially in fp32 (attention over
  // contexts longer than one decode partition): relative error ~sqrt(n) * 6e-8 = 4e-6 for
  // n = 4097, in the exp-sum and in the weighted values alike, so two summation orders differ by
  // up to ~1e-5. Indexing or masking bugs give errors of order 1, far above this.
  static constexpr double kF32LongSum = 5e-5;
  // 16-bit inputs with fp32 accumulation and fp32 output on tensor cores (cuBLASLt, m > 8),
  // which truncate their fp32 partial sums rather than round them: a bias that reaches ~1e-5
  // relative at k = 4096 (simulated), at the edge of kF32Kernel. 5e-5 still fails an output
  // rounded through fp16 (~2e-4 RMS).
  static constexpr double kF32TensorCore = 5e-5;
  // fp16 has 11 significant bits (bf16 has 8): storing a result rounds it by at most 2^-11
  // relative, ~3e-4 RMS over a vector; 2e-3 leaves room for fp32 accumulation differences and
  // is still 10x tighter than kBF16, so a bf16-precision bug in a half path fails.
  static constexpr double kF16 = 2e-3;
  // bf16 storage/compute, fp32 accumulation: 8 mantissa bits.
  static constexpr double kBF16 = 2e-2;
  // Whole models with int8 weights and matmul inputs (symmetric, blocks of 32) against their
  // stored precision: each matmul is off by ~0.6% (both operands rounded to steps of max/127),
  // and the errors of a few layers add up; measured 1.9-2.9% on hf-tiny and stories260K.
  static constexpr double kInt8 = 5e-2;
};

// ||actual - expected|| / ||expected|| (L2); 0 when both are zero.
double relative_error(std::span<const float> actual, std::span<const float> expected);

// Fails the test (with the first mismatching indices printed) when the relative error of
// `actual` against `expected` exceeds `tolerance`.
::testing::AssertionResult close_by_relative_error(std::span<const float> actual,
                                                   std::span<const float> expected,
                                                   double tolerance);

}  // namespace shardwise::testing
