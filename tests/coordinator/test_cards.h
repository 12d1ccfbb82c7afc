// Model cards for registry tests: stories260K's tokenizer at a given address.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "shardwise/v1/shard.pb.h"

namespace shardwise {

inline std::string read_test_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline v1::ModelCard test_card(const std::string& address, const std::string& device = "cpu",
                               int capacity = 2) {
  static const std::string tokenizer = read_test_file(std::string(SHARDWISE_SOURCE_DIR) +
                                                      "/assets/models/stories260K/tokenizer.json");
  v1::ModelCard c;
  c.set_name("stories");
  c.set_address(address);
  c.set_tokenizer_json(tokenizer);
  c.set_context_length(512);
  c.set_vocab_size(512);
  c.set_device(device == "cuda" ? v1::DEVICE_CUDA : v1::DEVICE_CPU);
  c.set_tp(1);
  c.set_capacity(capacity);
  return c;
}

}  // namespace shardwise
