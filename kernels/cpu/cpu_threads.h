// Thread count of the CPU kernels (OpenMP loops and OpenBLAS GEMMs).
#pragma once

namespace shardwise::cpu {

// n <= 0 keeps the library defaults (all cores).
void set_cpu_threads(int n);

}  // namespace shardwise::cpu
