// How deeply JSON text nests, found before parsing it. nlohmann::json parses iteratively, but
// dumping, copying and comparing a value recurse once per level, and so do our readers of nested
// specs (tokenizer.json pipelines, chat messages): untrusted JSON is refused past a depth first.
#pragma once

#include <string_view>

namespace shardwise {

// Deep enough for every file and request we read (tool schemas included); ~1 KB of stack per
// level leaves any thread room.
inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text` ("[]" is 1, "1" is 0), strings skipped;
// counting stops past `limit`, so the result is at most limit + 1. Text that is not JSON gets
// some number: the parser that follows rejects it.
int json_nesting_depth(std::string_view text, int limit = kMaxJsonDepth);

}  // namespace shardwise
