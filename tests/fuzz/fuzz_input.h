// What the fuzz targets share: the libFuzzer entry point each defines, and the input as text.
// Each target is built twice: with clang's libFuzzer by scripts/fuzz.sh, and as a replay tool
// (replay_main.cpp) in every normal and sanitizer build, whose ctest runs it over the target's
// seed corpus and the regression inputs of every crash the fuzzer found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size);

namespace shardwise::fuzz {

inline std::string_view as_text(const uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A property the input broke (a round trip that does not, say): abort, which both libFuzzer
// and the replay test report as a crash.
void fail(std::string_view what);

}  // namespace shardwise::fuzz
