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

// Round to nearest even, as the hardware conversions (vcvtneps2bf16, vcvtps2ph) do; NaN stays NaN.
// (vcvtneps2bf16 also flushes fp32 subnormals to zero; these keep them.)
inline std::uint16_t f32_to_bf16(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

std::uint16_t f32_to_f16(float value);

// Converts `count` elements of `dtype` at `src` to fp32 at `dst`.
void convert_to_f32(float* dst, const void* src, DType dtype, std::size_t count);

}  // namespace shardwise
