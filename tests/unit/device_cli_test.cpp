// `--device cuda` where it cannot run: a clear error and a non-zero exit, never a crash. On a
// machine with a GPU (and a CUDA build) the commands succeed and these tests skip.
#include <sys/wait.h>

#include <cstdio>

#include "tests/support/test_support.h"

namespace shardwise {
namespace {

struct Run {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string err;
};

Run run_tool(const std::string& tool, const std::string& arguments) {
  const auto dir = testing::scratch_dir("device_cli");
  const std::string command = std::string(SHARDWISE_BIN_DIR) + "/" + tool + " " + arguments +
                              " >/dev/null 2>" + (dir / "err").string();
  Run run;
  const int status = std::system(command.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.err = testing::read_text_file(dir / "err");
  return run;
}

// What a build with CUDA says without a GPU, and what a build without CUDA says.
#if SHARDWISE_WITH_CUDA
constexpr const char* kExpected = "no CUDA device";
#else
constexpr const char* kExpected = "without CUDA";
#endif

void expect_clear_failure(const Run& run) {
  if (run.exit_code == 0) GTEST_SKIP() << "a GPU is present: --device cuda ran";
  EXPECT_GT(run.exit_code, 0) << "crashed: " << run.err;
  EXPECT_NE(run.err.find(kExpected), std::string::npos) << run.err;
}

TEST(DeviceCli, GenerateOnCudaWithoutAGpuFailsClearly) {
  expect_clear_failure(run_tool("shardwise", "generate --device cuda --ids 1 --max-new-tokens 2"));
}

TEST(DeviceCli, LogitsOnCudaWithoutAGpuFailsClearly) {
  const auto out = testing::scratch_dir("device_cli_logits") / "logits.safetensors";
  expect_clear_failure(
      run_tool("shardwise", "logits --device cuda --dtype f32 --ids 1,2 --out " + out.string()));
}

TEST(DeviceCli, ShardOneShotOnCudaWithoutAGpuFailsClearly) {
  expect_clear_failure(run_tool("shardwise-shard", "--device cuda --ids 1 --max-new-tokens 2"));
}

TEST(DeviceCli, RandomWeightsNeedCuda) {
  auto run = run_tool("shardwise", "generate --random-weights --ids 1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("--random-weights needs --device cuda"), std::string::npos) << run.err;
}

// A CPU KV cache larger than the host's memory is refused with the sizes, not allocated (which
// the kernel would answer by killing the process).
TEST(DeviceCli, CpuCacheLargerThanTheHostIsRefused) {
  auto run = run_tool("shardwise-shard", "--ids 1 --max-new-tokens 2 --num-kv-blocks 2000000000");
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("RESOURCE_EXHAUSTED"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("more than this host's"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace shardwise
