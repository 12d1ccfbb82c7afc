// Thread count of the CPU kernels: one OpenMP team runs every kernel (matmul, attention,
// norms), so nothing else spins beside it.
#pragma once

namespace shardwise::cpu {

// n <= 0 keeps the OpenMP default (all cores, or OMP_NUM_THREADS).
void set_cpu_threads(int n);

}  // namespace shardwise::cpu
