// Registry::register_replica, what the coordinator does with a Register call: the bytes are a
// serialized ModelCard (its tokenizer files, chat template and limits), registered with a fresh
// registry. Kept thin on purpose: whatever validation registration grows, this reaches it.
#include <google/protobuf/stubs/logging.h>

#include "common/logging.h"
#include "coordinator/registry.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  // A line per input from protobuf (invalid UTF-8) and the registry would drown the fuzzer's.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return shardwise::set_log_level("off");
  }();
  (void)quiet;
  shardwise::v1::ModelCard card;
  if (!card.ParseFromArray(data, static_cast<int>(size))) return 0;
  shardwise::Registry registry(std::chrono::hours(1), 3, {});
  auto id = registry.register_replica(card);
  if (!id.ok()) return 0;
  auto tokenizer = registry.tokenizer(card.name());
  if (!tokenizer.ok()) shardwise::fuzz::fail("a registered model has no tokenizer");
  (void)(*tokenizer)->encode("Hello", true);
  return 0;
}
