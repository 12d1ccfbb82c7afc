// Streaming detokenization: feed generated ids one at a time and get the text that is final.
// The concatenation of every push() result and flush() equals tokenizer.decode(all ids), and
// no result ends inside a UTF-8 sequence or inside a run of byte-fallback tokens that a later
// token could still change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace shardwise {

class IncrementalDecoder {
 public:
  // `tokenizer` must outlive the decoder.
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Appends one id; returns the newly final text (often empty while bytes are pending).
  // An id outside the vocabulary -> OUT_OF_RANGE, and the decoder is left unchanged.
  StatusOr<std::string> push(int32_t id);

  // End of stream: returns the text still held back.
  StatusOr<std::string> flush();

  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  StatusOr<std::string> decode_from(std::size_t begin, std::size_t end) const;

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  // ids_[prefix_offset_, read_offset_) were emitted already; they are decoded again as context
  // so that decoders which treat the first token specially (Strip, Metaspace) see the same
  // first token in both decodes.
  std::size_t prefix_offset_ = 0;
  std::size_t read_offset_ = 0;
  std::string prefix_text_;
};

}  // namespace shardwise
