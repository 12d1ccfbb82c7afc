// Applies stop strings to streamed text: text is released as soon as no stop string can
// still begin inside it, and everything from the first match on is dropped. The concatenation
// of all released text is the full text cut before the earliest match.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardwise {

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Appends `text`; returns the newly released text. After a match, always "".
  std::string push(std::string_view text);
  // End of stream: releases the text held back as a possible stop-string prefix.
  std::string flush();
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not yet released: it may begin a stop string
  bool matched_ = false;
};

}  // namespace shardwise
