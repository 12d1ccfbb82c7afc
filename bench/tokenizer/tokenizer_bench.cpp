// Encode throughput of the Llama 3 tokenizer on ~4 MB of mixed English, C++ code and CJK text,
// single thread, reported as bytes_per_second (MB/s).
//
// The corpus: the English prose of the test data's README and tokenizer vectors, this
// project's own C++ sources, and CJK text drawn at random (fixed seed) from common Han,
// Hiragana and Katakana with punctuation; paragraphs are shuffled and repeated to 4 MB.
// "Warm" encodes the corpus repeatedly with one tokenizer (its word cache filled, as in a
// server); "Cold" loads a fresh tokenizer before each pass (not timed), so every word is new.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string cjk_paragraph(std::mt19937& rng) {
  std::uniform_int_distribution<int> length(40, 200);
  std::uniform_int_distribution<char32_t> han(0x4E00, 0x6FFF);
  std::uniform_int_distribution<char32_t> kana(0x3041, 0x30FA);
  std::string text;
  const int n = length(rng);
  for (int i = 0; i < n; ++i) {
    const int kind = static_cast<int>(rng() % 10);
    append_utf8(text, kind < 6 ? han(rng) : kind < 9 ? kana(rng) : char32_t{0x3002});
  }
  return text + "\n";
}

std::vector<std::string> split_paragraphs(const std::string& text) {
  std::vector<std::string> paragraphs;
  std::size_t begin = 0;
  for (std::size_t pos = text.find("\n\n"); pos != std::string::npos;
       pos = text.find("\n\n", begin)) {
    paragraphs.push_back(text.substr(begin, pos + 2 - begin));
    begin = pos + 2;
  }
  paragraphs.push_back(text.substr(begin));
  return paragraphs;
}

const std::string& corpus() {
  static const std::string text = [] {
    const fs::path testdata = SHARDWISE_TESTDATA_DIR;
    std::vector<std::string> paragraphs = split_paragraphs(read_file(testdata / "README.md"));
    for (const char* folder : {"models", "tokenizer"}) {
      for (const auto& entry :
           fs::recursive_directory_iterator(fs::path(SHARDWISE_SOURCE_DIR) / folder)) {
        const auto ext = entry.path().extension();
        if (ext == ".cpp" || ext == ".h") {
          for (auto& p : split_paragraphs(read_file(entry.path())))
            paragraphs.push_back(std::move(p));
        }
      }
    }
    std::mt19937 rng(2024);
    const std::size_t code_and_prose = paragraphs.size();
    for (std::size_t i = 0; i < code_and_prose / 2; ++i) paragraphs.push_back(cjk_paragraph(rng));
    std::string out;
    while (out.size() < (4u << 20)) {
      std::shuffle(paragraphs.begin(), paragraphs.end(), rng);
      for (const std::string& p : paragraphs) out += p;
    }
    return out;
  }();
  return text;
}

std::unique_ptr<shardwise::Tokenizer> load_llama3() {
  auto tokenizer =
      shardwise::Tokenizer::load(fs::path(SHARDWISE_TESTDATA_DIR) / "llama3-tokenizer");
  if (!tokenizer.ok()) throw std::runtime_error(tokenizer.status().to_string());
  return std::move(tokenizer).value();
}

void encode_corpus(benchmark::State& state, const shardwise::Tokenizer& tokenizer) {
  auto ids = tokenizer.encode(corpus(), false);
  if (!ids.ok()) state.SkipWithError(ids.status().to_string().c_str());
  benchmark::DoNotOptimize(ids);
  state.counters["tokens"] = static_cast<double>(ids.ok() ? ids->size() : 0);
}

void BM_Llama3EncodeWarm(benchmark::State& state) {
  const auto tokenizer = load_llama3();
  for (auto _ : state) encode_corpus(state, *tokenizer);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().size()));
}
BENCHMARK(BM_Llama3EncodeWarm)->Unit(benchmark::kMillisecond)->MinTime(3.0);

void BM_Llama3EncodeCold(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    const auto tokenizer = load_llama3();
    state.ResumeTiming();
    encode_corpus(state, *tokenizer);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().size()));
}
BENCHMARK(BM_Llama3EncodeCold)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
