#include <cuda_runtime.h>

#include "kernels/cuda/device.h"

namespace shardwise::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return count;
}

}  // namespace shardwise::cuda
