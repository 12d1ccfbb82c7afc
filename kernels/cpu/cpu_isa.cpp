#include "kernels/cpu/cpu_isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

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

// CPUID leaf 7 EDX bits 22 (AMX-BF16) and 24 (AMX-TILE); XCR0 bits 17-18 (the OS saves the
// tile state); Linux's permission for this process to use it (ARCH_REQ_XCOMP_PERM of
// XFEATURE_XTILEDATA, arch/x86/include/uapi/asm/prctl.h).
bool request_amx_bf16() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  if ((edx >> 22 & 1) == 0 || (edx >> 24 & 1) == 0) return false;
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  if ((ecx >> 27 & 1) == 0) return false;  // OSXSAVE: xgetbv is there
  unsigned xcr0_low = 0, xcr0_high = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  if ((xcr0_low >> 17 & 3) != 3) return false;
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

}  // namespace

bool amx_bf16_usable() {
  static const bool usable = cpu_supports(CpuIsa::kAvx512) && request_amx_bf16();
  return usable;
}

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
  if (amx_bf16_usable()) described += " amx_bf16";
  return described;
}

}  // namespace shardwise::cpu
