// How the CPU model holds its weights and KV cache and which kernels it runs (DESIGN.md leaves
// these to the CPU backend; the CLI's --weight-dtype / --kv-cache-dtype set them).
#pragma once

#include <optional>
#include <string_view>

#include "common/status.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/weight_type.h"
#include "models/paged_kv_cache.h"

namespace shardwise {

struct CpuModelOptions {
  // The matrices' type in memory; unset keeps each tensor's stored precision (F32 stays fp32,
  // BF16 bf16, F16 fp16). kInt8 quantises at load (packed_matrix.h), e.g. a bf16 checkpoint.
  std::optional<cpu::WeightType> weight_type;
  // The kernels' instruction set: the widest the CPU has unless a test or benchmark forces one.
  cpu::CpuIsa isa = cpu::best_cpu_isa();
  KvCacheType kv_cache = KvCacheType::kF32;  // e.g. kBF16 to halve the cache
};

// "auto" (stored precision), "f32", "f16", "bf16" or "int8".
StatusOr<std::optional<cpu::WeightType>> parse_weight_dtype(std::string_view name);
// "f32" or "bf16".
StatusOr<KvCacheType> parse_kv_cache_dtype(std::string_view name);
// "scalar", "avx2" or "avx512", which this CPU must support.
StatusOr<cpu::CpuIsa> parse_cpu_isa(std::string_view name);

}  // namespace shardwise
