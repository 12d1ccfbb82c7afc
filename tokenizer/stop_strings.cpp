#include "tokenizer/stop_strings.h"

#include <algorithm>
#include <utility>

namespace shardwise {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string StopStringMatcher::push(std::string_view text) {
  if (matched_) return "";
  pending_.append(text);
  size_t first_match = std::string::npos;
  for (const std::string& stop : stops_) first_match = std::min(first_match, pending_.find(stop));
  if (first_match != std::string::npos) {
    matched_ = true;
    std::string released = pending_.substr(0, first_match);
    pending_.clear();
    return released;
  }
  // Hold back the longest tail of pending_ that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& stop : stops_) {
    for (size_t n = std::min(stop.size() - 1, pending_.size()); n > hold; --n) {
      if (pending_.compare(pending_.size() - n, n, stop, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  std::string released = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return released;
}

std::string StopStringMatcher::flush() {
  if (matched_) return "";
  return std::exchange(pending_, "");
}

}  // namespace shardwise
