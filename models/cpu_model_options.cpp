#include "models/cpu_model_options.h"

#include "kernels/cpu/packed_matrix.h"

namespace shardwise {

StatusOr<std::optional<cpu::WeightType>> parse_weight_dtype(std::string_view name) {
  if (name == "auto") return std::optional<cpu::WeightType>();
  if (auto type = cpu::weight_type_from_name(name)) return std::optional<cpu::WeightType>(*type);
  return invalid_argument("weight dtype '{}': expected auto, f32, f16, bf16 or int8", name);
}

StatusOr<KvCacheType> parse_kv_cache_dtype(std::string_view name) {
  if (name == "f32") return KvCacheType::kF32;
  if (name == "bf16") return KvCacheType::kBF16;
  return invalid_argument("KV cache dtype '{}': expected f32 or bf16", name);
}

StatusOr<cpu::CpuIsa> parse_cpu_isa(std::string_view name) {
  auto isa = cpu::cpu_isa_from_name(name);
  if (!isa)
    return invalid_argument("CPU instruction set '{}': expected scalar, avx2 or avx512", name);
  if (!cpu::cpu_supports(*isa)) {
    return failed_precondition("this CPU cannot run the {} kernels ({})", name,
                               cpu::cpu_description());
  }
  return *isa;
}

}  // namespace shardwise
