#include "kernels/cpu/cpu_threads.h"

#include <cblas.h>
#include <omp.h>

namespace shardwise::cpu {

void set_cpu_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

}  // namespace shardwise::cpu
