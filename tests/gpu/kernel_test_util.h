// Shared by the pointwise/GEMM/sampling GPU tests: element types, rounding, random inputs and
// the tolerance for each element type.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <random>
#include <type_traits>
#include <vector>

#include "tests/support/test_support.h"

namespace shardwise::testing {

template <typename T>
inline float to_float(T value) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(value);
  if constexpr (std::is_same_v<T, __half>) return __half2float(value);
  if constexpr (std::is_same_v<T, float>) return value;
}

template <typename T>
inline T from_float(float value) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16(value);
  if constexpr (std::is_same_v<T, __half>) return __float2half(value);
  if constexpr (std::is_same_v<T, float>) return value;
}

// The relative-error tolerance of a single kernel whose inputs and outputs are T.
template <typename T>
constexpr double tolerance_for() {
  if constexpr (std::is_same_v<T, float>) return Tolerance::kF32Kernel;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return Tolerance::kBF16;
  return Tolerance::kF16;
}

template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, float>) return "float";
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return "bf16";
  return "half";
}

inline std::vector<float> normal_vector(std::size_t n, std::mt19937& rng, float mean = 0.0f,
                                        float stddev = 1.0f) {
  std::normal_distribution<float> normal(mean, stddev);
  std::vector<float> values(n);
  for (auto& value : values) value = normal(rng);
  return values;
}

// Converts to T and rounds `values` in place to what T holds, so that the CPU reference sees
// exactly the GPU's inputs.
template <typename T>
std::vector<T> round_to(std::vector<float>& values) {
  std::vector<T> converted(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    converted[i] = from_float<T>(values[i]);
    values[i] = to_float(converted[i]);
  }
  return converted;
}

template <typename T>
std::vector<float> to_floats(const std::vector<T>& values) {
  std::vector<float> result(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) result[i] = to_float(values[i]);
  return result;
}

using KernelTypes = ::testing::Types<float, __nv_bfloat16, __half>;

struct TypeNames {
  template <typename T>
  static std::string GetName(int) {
    return type_name<T>();
  }
};

}  // namespace shardwise::testing
