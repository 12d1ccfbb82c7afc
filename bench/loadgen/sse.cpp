#include "bench/loadgen/sse.h"

namespace shardwise::loadgen {

void SseParser::feed(std::string_view bytes) {
  pending_.append(bytes);
  size_t start = 0;
  while (true) {
    const size_t newline = pending_.find('\n', start);
    if (newline == std::string::npos) break;
    std::string_view text(pending_.data() + start, newline - start);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    line(text);
    start = newline + 1;
  }
  pending_.erase(0, start);
}

void SseParser::line(std::string_view text) {
  if (text.empty()) {
    if (has_data_) on_event_(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (!text.starts_with("data:")) return;
  text.remove_prefix(5);
  if (text.starts_with(' ')) text.remove_prefix(1);
  if (has_data_) data_ += '\n';
  data_.append(text);
  has_data_ = true;
}

}  // namespace shardwise::loadgen
