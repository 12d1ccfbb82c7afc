#include "tests/fuzz/fuzz_input.h"

#include <cstdio>
#include <cstdlib>

namespace shardwise::fuzz {

void fail(std::string_view what) {
  std::fprintf(stderr, "fuzz property broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace shardwise::fuzz
