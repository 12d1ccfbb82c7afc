// Limits on one chat template, compiled or rendered. Templates and the messages they render come
// from the network (a shard's registration, a client's request), so none of them may exhaust the
// stack, the CPU or the memory of the coordinator: past a limit, compile() and render() fail with
// INVALID_ARGUMENT instead. Every real template in the test data stays far below each limit
// (tests/unit/tokenizer/jinja_limits_test.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shardwise::tokenizer::jinja {

// Nesting of the source: brackets, operators chained into one expression, statements inside
// statements. The parser, the evaluator and the syntax tree's destructors recurse once per
// level, so this bounds their stack (real templates nest about 10 deep).
inline constexpr int kMaxSyntaxDepth = 200;

// Native recursion while rendering (expressions inside statements inside macro calls).
inline constexpr int kMaxRenderDepth = 1000;

// Nesting of the lists, dicts and namespaces a render holds (JSON messages and tools, values
// a template builds with `set`): their printing, comparison and destruction recurse per level.
inline constexpr int kMaxValueDepth = 100;

// Work of one render, in steps: one per expression, statement or loop iteration, plus one per
// element of each list built and per 64 bytes of each string produced. About a second of CPU.
inline constexpr int64_t kMaxRenderSteps = 10'000'000;
inline constexpr std::size_t kBytesPerStep = 64;

// The largest string a render may build, its output included ('a' * 10**8 fails at once).
inline constexpr std::size_t kMaxStringBytes = std::size_t{16} << 20;

// The most elements of a list built from a string or a range (each costs ~50 bytes).
inline constexpr std::size_t kMaxListItems = std::size_t{1} << 20;

// One level of a recursion bounded by `limit` (the parser's, the renderer's), for as long as it
// lives: `depth` counts the levels alive. Past the limit it throws jinja::Error, "line 3:
// <what> more than <limit> deep".
class DepthGuard {
 public:
  DepthGuard(int& depth, int limit, std::string_view what, int line);
  ~DepthGuard() { --depth_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;

 private:
  int& depth_;
};

// Throws jinja::Error when a string of `bytes` would pass kMaxStringBytes.
void check_string_size(std::size_t bytes);
// Throws jinja::Error when a list of `items` would pass kMaxListItems.
void check_list_size(std::size_t items);

}  // namespace shardwise::tokenizer::jinja
