// The vector instruction sets the CPU kernels are built for, chosen at run time by cpuid. Each
// kernel with vector code has one implementation per set (files *_avx512.cpp, *_avx2.cpp,
// compiled with those flags) and a portable scalar one, which is the reference.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace shardwise::cpu {

enum class CpuIsa {
  kScalar,  // portable C++, any x86-64 (or other) CPU
  kAvx2,    // AVX2 + FMA + F16C (Zen 2/3, Haswell and later)
  kAvx512,  // AVX-512 F/BW/VL with BF16 (vdpbf16ps) and VNNI (vpdpbusd): Zen 4, Sapphire Rapids
};

// Whether this CPU (and its OS, which must save the wider registers) can run `isa`.
bool cpu_supports(CpuIsa isa);
// The widest instruction set this CPU supports.
CpuIsa best_cpu_isa();

// Whether the AVX-512 matmul may use AMX tiles for bf16 (Sapphire Rapids and later): the CPU
// has AMX-TILE and AMX-BF16 and Linux grants this process the tile state (arch_prctl
// ARCH_REQ_XCOMP_PERM, asked once, on the first call).
bool amx_bf16_usable();

std::string_view cpu_isa_name(CpuIsa isa);  // "scalar", "avx2", "avx512"
std::optional<CpuIsa> cpu_isa_from_name(std::string_view name);

// "AMD EPYC 9R14 ... | avx2 fma f16c avx512f avx512bw avx512vl avx512_bf16 avx512_vnni": the
// model name from /proc/cpuinfo and the features the kernels look at (amx_bf16 where usable),
// for benchmark reports.
std::string cpu_description();

}  // namespace shardwise::cpu
