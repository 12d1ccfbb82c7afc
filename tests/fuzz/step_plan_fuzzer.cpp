// StepPlan::decode, what a follower runs on the bytes its leader broadcast: the first 32 bytes
// are the header, the rest the payload. A plan that decodes must encode back to the same ints.
#include <array>
#include <cstring>
#include <vector>

#include "shard/runner/step_plan.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using shardwise::StepPlan;
  StepPlan::Header header{};
  if (size < sizeof(header)) return 0;
  std::memcpy(header.data(), data, sizeof(header));
  std::vector<int32_t> payload((size - sizeof(header)) / sizeof(int32_t));
  if (!payload.empty()) {
    std::memcpy(payload.data(), data + sizeof(header), payload.size() * sizeof(int32_t));
  }
  auto plan = StepPlan::decode(header, payload);
  if (!plan.ok()) return 0;
  StepPlan::Header header_again{};
  std::vector<int32_t> payload_again;
  plan->encode(&header_again, &payload_again);
  if (header_again != header || payload_again != payload) {
    shardwise::fuzz::fail("a decoded step plan does not encode back to its bytes");
  }
  return 0;
}
