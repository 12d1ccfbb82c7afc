#include "tests/unit/tokenizer/tokenizer_fixtures.h"

#include <sstream>
#include <stdexcept>

#include "tests/support/test_support.h"

namespace shardwise::testing {
namespace {

std::unique_ptr<Tokenizer> must_load(const std::filesystem::path& dir) {
  auto tokenizer = Tokenizer::load(dir);
  if (!tokenizer.ok()) throw std::runtime_error(tokenizer.status().to_string());
  return std::move(tokenizer).value();
}

std::unique_ptr<Tokenizer> must_parse(const std::filesystem::path& json_path,
                                      const std::filesystem::path& config_path) {
  auto tokenizer = Tokenizer::from_json(read_text_file(json_path), read_text_file(config_path));
  if (!tokenizer.ok()) throw std::runtime_error(tokenizer.status().to_string());
  return std::move(tokenizer).value();
}

}  // namespace

const Tokenizer& llama3_tokenizer() {
  static const auto tokenizer = must_load(testdata_dir() / "llama3-tokenizer");
  return *tokenizer;
}

const Tokenizer& qwen3_tokenizer() {
  static const auto tokenizer = must_load(testdata_dir() / "qwen3-tokenizer");
  return *tokenizer;
}

const Tokenizer& llama2_tokenizer() {
  static const auto tokenizer = must_load(testdata_dir() / "llama2-tokenizer");
  return *tokenizer;
}

const Tokenizer& stories_tokenizer() {
  static const auto tokenizer = must_load(testdata_dir() / "stories260K/hf");
  return *tokenizer;
}

const Tokenizer& stories_metaspace_tokenizer() {
  const auto dir = testdata_dir() / "stories260K/hf";
  static const auto tokenizer =
      must_parse(dir / "tokenizer.transformers5-metaspace.json", dir / "tokenizer_config.json");
  return *tokenizer;
}

nlohmann::json read_json(const std::string& relative_path) {
  return nlohmann::json::parse(read_text_file(testdata_dir() / relative_path));
}

std::vector<std::string> read_llama_cpp_inputs(const std::string& relative_path) {
  const std::string text = read_text_file(testdata_dir() / relative_path);
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  std::size_t begin = 0;
  for (std::size_t pos = text.find(separator); pos != std::string::npos;
       pos = text.find(separator, begin)) {
    inputs.push_back(text.substr(begin, pos - begin));
    begin = pos + separator.size();
  }
  return inputs;
}

std::vector<std::vector<int32_t>> read_llama_cpp_outputs(const std::string& relative_path) {
  std::istringstream text(read_text_file(testdata_dir() / relative_path));
  std::vector<std::vector<int32_t>> outputs;
  for (std::string line; std::getline(text, line);) {
    std::istringstream ids(line);
    std::vector<int32_t>& row = outputs.emplace_back();
    for (int32_t id; ids >> id;) row.push_back(id);
  }
  return outputs;
}

}  // namespace shardwise::testing
