// The facts behind --version, filled in by the build (version_info.cpp is generated from
// version_info.cpp.in by common/version_info.cmake).
#pragma once

namespace shardwise {

struct VersionInfo {
  const char* version;     // the CMake project version, e.g. "0.1.0"
  const char* commit;      // e.g. "5a43acc1f0e2", "5a43acc1f0e2-dirty" or "unknown"
  const char* build_type;  // CMAKE_BUILD_TYPE, e.g. "RelWithDebInfo"
  bool cuda;               // built with the CUDA backend
  const char* sanitizers;  // SHARDWISE_SANITIZE, e.g. "address,undefined"; "" for none
};

const VersionInfo& version_info();

}  // namespace shardwise
