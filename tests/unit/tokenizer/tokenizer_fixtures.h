// Shared loading of the reference tokenizers in ../shared/testdata: each is parsed once per
// test process (the Llama 3 and Qwen3 files are ~10 MB of JSON).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace shardwise::testing {

// testdata/llama3-tokenizer, qwen3-tokenizer, llama2-tokenizer (loaded from the .gz).
const Tokenizer& llama3_tokenizer();
const Tokenizer& qwen3_tokenizer();
const Tokenizer& llama2_tokenizer();
// stories260K/hf/tokenizer.json (Llama 2 legacy style) and its transformers-5 Metaspace twin.
const Tokenizer& stories_tokenizer();
const Tokenizer& stories_metaspace_tokenizer();

nlohmann::json read_json(const std::string& relative_path);

// llama.cpp's .inp (strings separated by "\n__ggml_vocab_test__\n") and .out (one line of ids
// per string).
std::vector<std::string> read_llama_cpp_inputs(const std::string& relative_path);
std::vector<std::vector<int32_t>> read_llama_cpp_outputs(const std::string& relative_path);

}  // namespace shardwise::testing
