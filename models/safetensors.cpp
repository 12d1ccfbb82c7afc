#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace shardwise {
namespace {

using nlohmann::json;

// A header larger than this is certainly corrupt (real ones are a few hundred KB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

StatusOr<TensorView> parse_tensor_entry(const std::string& name, const json& entry,
                                        const std::byte* data, std::size_t data_size) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    return data_loss("tensor '{}': entry needs dtype, shape and data_offsets", name);
  }
  TensorView view;
  view.name = name;
  if (!entry["dtype"].is_string()) return data_loss("tensor '{}': dtype is not a string", name);
  const std::string dtype = entry["dtype"];
  auto parsed = dtype_from_name(dtype);
  if (!parsed) {
    return data_loss("tensor '{}': unsupported dtype '{}' (supported: F32, F16, BF16)", name,
                     dtype);
  }
  view.dtype = *parsed;

  const json& shape = entry["shape"];
  if (!shape.is_array()) return data_loss("tensor '{}': shape is not an array", name);
  uint64_t elements = 1;
  for (const auto& dim : shape) {
    if (!dim.is_number_unsigned())
      return data_loss("tensor '{}': bad dimension {}", name, dim.dump());
    const uint64_t extent = dim.get<uint64_t>();
    if (extent != 0 && elements > (uint64_t{1} << 48) / extent) {
      return data_loss("tensor '{}': shape too large", name);
    }
    elements *= extent;
    view.shape.push_back(static_cast<int64_t>(extent));
  }

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return data_loss("tensor '{}': data_offsets must be [begin, end]", name);
  }
  const uint64_t begin = offsets[0].get<uint64_t>();
  const uint64_t end = offsets[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return data_loss(
        "tensor '{}': data_offsets [{}, {}] lie outside the {} data bytes (truncated "
        "file?)",
        name, begin, end, data_size);
  }
  const uint64_t expected = elements * dtype_size(view.dtype);
  if (end - begin != expected) {
    return data_loss("tensor '{}': {} bytes in the file, but shape x {} needs {}", name,
                     end - begin, dtype, expected);
  }
  view.data = data + begin;
  view.byte_size = end - begin;
  return view;
}

}  // namespace

int64_t TensorView::element_count() const {
  int64_t count = 1;
  for (int64_t extent : shape) count *= extent;
  return count;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(
    const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return not_found("{}: cannot open: {}", path.string(), std::strerror(errno));
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    ::close(fd);
    return data_loss("{}: cannot stat: {}", path.string(), std::strerror(errno));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_size_ = static_cast<std::size_t>(info.st_size);
  if (file->mapping_size_ > 0) {
    file->mapping_ = mmap(nullptr, file->mapping_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  }
  ::close(fd);
  if (file->mapping_ == MAP_FAILED) {
    file->mapping_ = nullptr;
    return data_loss("{}: mmap failed: {}", path.string(), std::strerror(errno));
  }
  SW_RETURN_IF_ERROR(file->parse_header(file->mapping_size_).with_context(path.string()));
  return file;
}

Status SafetensorsFile::parse_header(std::size_t file_size) {
  if (file_size < 8)
    return data_loss("file is {} bytes, too short for a safetensors header", file_size);
  const auto* bytes = static_cast<const std::byte*>(mapping_);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian, as are the machines we run on
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8) {
    return data_loss("header length {} exceeds the file size {} (truncated or not safetensors)",
                     header_size, file_size);
  }
  const char* header_text = reinterpret_cast<const char*>(bytes + 8);
  json header = json::parse(header_text, header_text + header_size, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return data_loss("header is not a JSON object");

  const std::byte* data = bytes + 8 + header_size;
  const std::size_t data_size = file_size - 8 - header_size;
  std::vector<std::pair<std::size_t, const TensorView*>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    SW_ASSIGN_OR_RETURN(TensorView view, parse_tensor_entry(name, entry, data, data_size));
    auto [it, inserted] = tensors_.emplace(name, std::move(view));
    ranges.emplace_back(it->second.data - data, &it->second);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    const TensorView& previous = *ranges[i - 1].second;
    if (ranges[i - 1].first + previous.byte_size > ranges[i].first) {
      return data_loss("tensors '{}' and '{}' overlap", previous.name, ranges[i].second->name);
    }
  }
  return ok_status();
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void release_pages(const std::byte* data, std::size_t bytes) {
  if (bytes == 0) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(data) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
  // Pages shared with a neighbouring tensor go too: they are read back if it needs them.
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<NamedTensorF32>& tensors) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& tensor : tensors) {
    uint64_t elements = 1;
    for (int64_t extent : tensor.shape) elements *= static_cast<uint64_t>(extent);
    header[tensor.name] = {{"dtype", "F32"},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + elements * sizeof(float)}}};
    offset += elements * sizeof(float);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return not_found("{}: cannot create: {}", path.string(), std::strerror(errno));
  const uint64_t header_size = text.size();
  out.write(reinterpret_cast<const char*>(&header_size), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& tensor : tensors) {
    uint64_t elements = 1;
    for (int64_t extent : tensor.shape) elements *= static_cast<uint64_t>(extent);
    out.write(reinterpret_cast<const char*>(tensor.data),
              static_cast<std::streamsize>(elements * sizeof(float)));
  }
  out.close();
  if (!out) return data_loss("{}: write failed", path.string());
  return ok_status();
}

}  // namespace shardwise
