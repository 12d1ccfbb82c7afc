// The element types of weight matrices packed for the CPU matmul (packed_matrix.h).
#pragma once

namespace shardwise::cpu {

enum class WeightType {
  kF32,   // fp32, multiplied in fp32
  kF16,   // fp16, widened to fp32 in registers
  kBF16,  // bf16: vdpbf16ps on AVX-512 (activations rounded to bf16), else widened to fp32
  kInt8,  // symmetric int8 per block of 32 along the input dimension, one fp16 scale per block
};

}  // namespace shardwise::cpu
