// `--device cuda` where it cannot run: a clear error and a non-zero exit, never a crash. On a
// machine with a GPU (and a CUDA build) the commands succeed and these tests skip. Also the
// CPU-only device flags (--weight-dtype, --kv-cache-dtype).
#include <sys/wait.h>

#include <cstdio>

#include "tests/support/test_support.h"

namespace shardwise {
namespace {

struct Run {
  int exit_code = -1;  // -1: killed by a signal (a crash)
  std::string out;
  std::string err;
};

Run run_tool(const std::string& tool, const std::string& arguments) {
  const auto dir = testing::scratch_dir("device_cli");
  // shardwise-shard starts MPI: Open MPI's own allocations would be reported as leaks (as in
  // tests/mpi/CMakeLists.txt), and the report would replace the exit code under test.
  const std::string environment =
      tool == "shardwise-shard" ? "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 " : "";
  const std::string command = environment + std::string(SHARDWISE_BIN_DIR) + "/" + tool + " " +
                              arguments + " >" + (dir / "out").string() + " 2>" +
                              (dir / "err").string();
  Run run;
  const int status = std::system(command.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = testing::read_text_file(dir / "out");
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

// The CPU's weight and KV cache types: int8 weights with a bf16 cache generate through the CLI
// and through shardwise-shard; values CLI11 does not know, or CPU types with --device cuda, are
// refused with a message.
TEST(DeviceCli, CpuWeightAndCacheTypes) {
  for (const char* tool : {"shardwise generate", "shardwise-shard"}) {
    const std::string name(tool);
    const std::string binary = name.substr(0, name.find(' '));
    const std::string command = name.find(' ') == std::string::npos ? "" : "generate ";
    auto run = run_tool(binary, command +
                                    "--weight-dtype int8 --kv-cache-dtype bf16 --ids 1 "
                                    "--max-new-tokens 6 --temperature 0");
    EXPECT_EQ(run.exit_code, 0) << tool << ": " << run.err;
    EXPECT_NE(run.out.find("token_ids"), std::string::npos) << tool << ": " << run.out;
  }
  auto unknown = run_tool("shardwise", "generate --weight-dtype int4 --ids 1");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("--weight-dtype"), std::string::npos) << unknown.err;
  auto on_cuda = run_tool("shardwise", "generate --device cuda --weight-dtype int8 --ids 1");
  EXPECT_EQ(on_cuda.exit_code, 1);
  EXPECT_NE(on_cuda.err.find("are for --device cpu"), std::string::npos) << on_cuda.err;
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
