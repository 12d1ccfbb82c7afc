// Server-sent events, split from a byte stream that arrives in arbitrary pieces: each event's
// "data:" lines (joined with newlines) once its blank line arrives. Other fields and comments
// are ignored, as the SSE specification says for an unnamed event stream.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace shardwise::loadgen {

class SseParser {
 public:
  using EventFn = std::function<void(const std::string& data)>;

  explicit SseParser(EventFn on_event) : on_event_(std::move(on_event)) {}

  void feed(std::string_view bytes);

 private:
  void line(std::string_view text);

  EventFn on_event_;
  std::string pending_;  // an incomplete line
  std::string data_;     // the current event's data lines
  bool has_data_ = false;
};

}  // namespace shardwise::loadgen
