// Finding out whether this process can use a GPU.
#pragma once

namespace shardwise::cuda {

// The number of usable CUDA devices: 0 when there is no GPU or no driver (never an error).
int device_count();

}  // namespace shardwise::cuda
