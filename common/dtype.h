// Element types of checkpoint tensors and conversions to fp32 (the CPU path computes in fp32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace shardwise {

enum class DType { kF32, kF16, kBF16 };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // "F32", "F16", "BF16" (safetensors names)
std::optional<DType> dtype_from_name(std::string_view name);

inline float bf16_to_f32(std::uint16_t bits) {
  std::uint32_t widened = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof(value));
  return value;
}

float f16_to_f32(std::uint16_t bits);

// Converts `count` elements of `dtype` at `src` to fp32 at `dst`.
void convert_to_f32(float* dst, const void* src, DType dtype, std::size_t count);

}  // namespace shardwise
