// Rounding to the nearest integer, ties to even, in a form compilers vectorise (nearbyint() is
// a library call on baseline x86-64): int8 quantisation of weights at load and of matmul
// inputs on every call.
#pragma once

namespace shardwise::cpu {

// Exact for |x| < 2^22: adding 1.5 * 2^23 leaves no fraction bits, so the addition rounds.
inline float round_to_even(float x) {
  constexpr float kShift = 12582912.0f;
  return (x + kShift) - kShift;
}

}  // namespace shardwise::cpu
