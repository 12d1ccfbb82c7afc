// SafetensorsFile::open over arbitrary bytes as a whole file (length prefix, JSON header,
// data), kept in a memfd so that the reader maps it as it maps a checkpoint. Every tensor it
// accepts is converted whole: a view past the mapping would fault.
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "models/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  auto file = shardwise::SafetensorsFile::open(path);
  if (!file.ok()) return 0;
  std::vector<float> values;
  for (const auto& [name, view] : (*file)->tensors()) {
    if (view.byte_size != static_cast<std::size_t>(view.element_count()) * dtype_size(view.dtype)) {
      shardwise::fuzz::fail("a tensor's byte size disagrees with its shape");
    }
    values.resize(static_cast<std::size_t>(view.element_count()));
    shardwise::convert_to_f32(values.data(), view.data, view.dtype, values.size());
  }
  return 0;
}
