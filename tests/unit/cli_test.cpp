// The shardwise CLI as a user runs it: a real process, JSON on stdout, errors on stderr.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/safetensors.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

Run run_cli(const std::string& arguments) {
  const auto dir = testing::scratch_dir("cli");
  const std::string command = std::string(SHARDWISE_BIN_DIR) + "/shardwise " + arguments + " >" +
                              (dir / "out").string() + " 2>" + (dir / "err").string();
  Run run;
  const int status = std::system(command.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = testing::read_text_file(dir / "out");
  run.err = testing::read_text_file(dir / "err");
  return run;
}

TEST(Cli, GenerateWithTheDefaultModelPrintsJson) {
  auto run = run_cli("generate --ids 1 --max-new-tokens 12 --temperature 0");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto out = nlohmann::json::parse(run.out);
  EXPECT_EQ(out["token_ids"],
            (std::vector<int>{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421}));
}

TEST(Cli, GenerateFromTextPromptPrintsText) {
  const auto reference = nlohmann::json::parse(
      testing::read_text_file(testing::testdata_dir() / "stories260K/reference/reference.json"));
  std::string expected;
  for (const auto& c : reference["cases"]) {
    if (c["name"] == "once_upon_a_time_steps64") expected = c["text"];
  }
  auto run = run_cli("generate --prompt 'Once upon a time' --max-new-tokens 60");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto out = nlohmann::json::parse(run.out);
  EXPECT_EQ("Once upon a time" + out["text"].get<std::string>(), expected);
  EXPECT_EQ(out["token_ids"].size(), 60u);
}

TEST(Cli, TokenizeAndDetokenize) {
  auto tokenized = run_cli("tokenize --text 'Once upon a time'");
  ASSERT_EQ(tokenized.exit_code, 0) << tokenized.err;
  EXPECT_EQ(nlohmann::json::parse(tokenized.out)["token_ids"],
            (std::vector<int>{1, 403, 407, 261, 378}));
  auto bare = run_cli("tokenize --no-special-tokens --text 'Once upon a time'");
  EXPECT_EQ(nlohmann::json::parse(bare.out)["token_ids"], (std::vector<int>{403, 407, 261, 378}));
  auto detokenized = run_cli("detokenize --ids 403,407,261,378");
  ASSERT_EQ(detokenized.exit_code, 0) << detokenized.err;
  EXPECT_EQ(nlohmann::json::parse(detokenized.out)["text"], "Once upon a time");
}

TEST(Cli, ChatRendersTheTemplateOrSaysThereIsNone) {
  // The default model ships a chat template (assets/models/stories260K/README.md).
  auto chat = run_cli("generate --prompt hi --chat --max-new-tokens 4 --temperature 0");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_EQ(nlohmann::json::parse(chat.out)["token_ids"].size(), 4u);

  // The same model without one: a clear error.
  const auto model = testing::scratch_dir("cli-no-template");
  for (const auto& entry : std::filesystem::directory_iterator(testing::default_model_dir())) {
    if (entry.path().filename() == "tokenizer_config.json") continue;
    std::filesystem::remove(model / entry.path().filename());
    std::filesystem::create_symlink(entry.path(), model / entry.path().filename());
  }
  auto config = nlohmann::json::parse(
      testing::read_text_file(testing::default_model_dir() / "tokenizer_config.json"));
  config.erase("chat_template");
  std::ofstream(model / "tokenizer_config.json") << config.dump();
  auto run = run_cli("generate --model " + model.string() + " --prompt hi --chat");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("no chat template"), std::string::npos) << run.err;
  auto neither = run_cli("generate");
  EXPECT_NE(neither.exit_code, 0);
  EXPECT_NE(neither.err.find("--ids or --prompt"), std::string::npos) << neither.err;
}

TEST(Cli, LogitsWritesOneRowPerId) {
  const auto path = testing::scratch_dir("cli-logits") / "logits.safetensors";
  auto run = run_cli("--threads 1 logits --ids 1,403,407,261,378 --out " + path.string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto written = SafetensorsFile::open(path);
  ASSERT_TRUE(written.ok()) << written.status().to_string();
  const TensorView* logits = (*written)->find("logits");
  ASSERT_NE(logits, nullptr);
  EXPECT_EQ(logits->dtype, DType::kF32);
  EXPECT_EQ(logits->shape, (std::vector<int64_t>{5, 512}));
  auto reference = SafetensorsFile::open(testing::testdata_dir() /
                                         "stories260K/reference/reference_logits.safetensors");
  ASSERT_TRUE(reference.ok());
  const TensorView* expected = (*reference)->find("once_upon_a_time.prompt_logits");
  std::vector<float> a(5 * 512), b(5 * 512);
  convert_to_f32(a.data(), logits->data, logits->dtype, a.size());
  convert_to_f32(b.data(), expected->data, expected->dtype, b.size());
  EXPECT_TRUE(testing::close_by_relative_error(a, b, testing::Tolerance::kF32));
}

TEST(Cli, ErrorsGoToStderrWithNonZeroExit) {
  auto missing_model = run_cli("generate --model /nonexistent --ids 1");
  EXPECT_EQ(missing_model.exit_code, 2);  // a usage error: the folder named does not exist
  EXPECT_TRUE(missing_model.out.empty());
  EXPECT_NE(missing_model.err.find("model folder /nonexistent does not exist"), std::string::npos)
      << missing_model.err;
  const auto empty_dir = testing::scratch_dir("cli-empty-model");
  auto no_config = run_cli("generate --model " + empty_dir.string() + " --ids 1");
  EXPECT_EQ(no_config.exit_code, 1);
  EXPECT_NE(no_config.err.find(empty_dir.string() + "/config.json"), std::string::npos)
      << no_config.err;

  auto bad_id = run_cli("generate --ids 1,9999");
  EXPECT_NE(bad_id.exit_code, 0);
  EXPECT_NE(bad_id.err.find("token id 9999"), std::string::npos) << bad_id.err;

  auto no_ids = run_cli("logits --out /tmp/x.safetensors");
  EXPECT_NE(no_ids.exit_code, 0);
  EXPECT_NE(no_ids.err.find("--ids"), std::string::npos) << no_ids.err;

  auto negative = run_cli("generate --ids 1 --max-new-tokens -3");
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_NE(negative.err.find("max_new_tokens"), std::string::npos) << negative.err;
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* command : {"", "logits", "generate", "tokenize", "detokenize"}) {
    auto run = run_cli(std::string(command) + " --help");
    EXPECT_EQ(run.exit_code, 0) << command;
    EXPECT_NE(run.out.find("Usage"), std::string::npos) << command;
  }
}

}  // namespace
}  // namespace shardwise
