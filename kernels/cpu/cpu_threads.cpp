#include "kernels/cpu/cpu_threads.h"

#include <omp.h>

namespace shardwise::cpu {

void set_cpu_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

}  // namespace shardwise::cpu
