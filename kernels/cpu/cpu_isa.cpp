#include "kernels/cpu/cpu_isa.h"

#include <fstream>
#include <span>

namespace shardwise::cpu {
namespace {

struct Feature {
  const char* name;
  bool present;
};

// __builtin_cpu_supports also checks that the OS enabled the register state (XCR0).
std::span<const Feature> features() {
  __builtin_cpu_init();
  static const Feature list[] = {
      {"avx2", __builtin_cpu_supports("avx2") != 0},
      {"fma", __builtin_cpu_supports("fma") != 0},
      {"f16c", __builtin_cpu_supports("f16c") != 0},
      {"avx512f", __builtin_cpu_supports("avx512f") != 0},
      {"avx512bw", __builtin_cpu_supports("avx512bw") != 0},
      {"avx512vl", __builtin_cpu_supports("avx512vl") != 0},
      {"avx512_bf16", __builtin_cpu_supports("avx512bf16") != 0},
      {"avx512_vnni", __builtin_cpu_supports("avx512vnni") != 0},
  };
  return list;
}

bool has(std::string_view name) {
  for (const Feature& feature : features()) {
    if (name == feature.name) return feature.present;
  }
  return false;
}

}  // namespace

bool cpu_supports(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar:
      return true;
    case CpuIsa::kAvx2:
      return has("avx2") && has("fma") && has("f16c");
    case CpuIsa::kAvx512:
      return cpu_supports(CpuIsa::kAvx2) && has("avx512f") && has("avx512bw") && has("avx512vl") &&
             has("avx512_bf16") && has("avx512_vnni");
  }
  return false;
}

CpuIsa best_cpu_isa() {
  static const CpuIsa best = cpu_supports(CpuIsa::kAvx512) ? CpuIsa::kAvx512
                             : cpu_supports(CpuIsa::kAvx2) ? CpuIsa::kAvx2
                                                           : CpuIsa::kScalar;
  return best;
}

std::string_view cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kScalar:
      return "scalar";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::optional<CpuIsa> cpu_isa_from_name(std::string_view name) {
  for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
    if (name == cpu_isa_name(isa)) return isa;
  }
  return std::nullopt;
}

std::string cpu_description() {
  std::string model = "unknown CPU";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::string described = model + " |";
  for (const Feature& feature : features()) {
    if (feature.present) described += std::string(" ") + feature.name;
  }
  return described;
}

}  // namespace shardwise::cpu
