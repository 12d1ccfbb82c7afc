#include "bench/loadgen/client.h"

#include <fstream>
#include <iterator>

namespace shardwise::loadgen {

StatusOr<Protocol> parse_protocol(const std::string& name) {
  if (name == "grpc") return Protocol::kGrpc;
  if (name == "completions") return Protocol::kCompletions;
  if (name == "chat") return Protocol::kChat;
  return invalid_argument("unknown protocol '{}' (grpc, completions or chat)", name);
}

const char* protocol_name(Protocol protocol) {
  switch (protocol) {
    case Protocol::kGrpc:
      return "grpc";
    case Protocol::kCompletions:
      return "completions";
    case Protocol::kChat:
      return "chat";
  }
  return "?";
}

StatusOr<std::unique_ptr<Client>> make_client(const ClientOptions& options,
                                              Clock::time_point zero) {
  if (options.model.empty()) return invalid_argument("--model is required");
  if (options.protocol == Protocol::kGrpc) return make_grpc_client(options, zero);
  return make_http_client(options, zero);
}

StatusOr<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("cannot read {}", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace shardwise::loadgen
