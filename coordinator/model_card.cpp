#include "coordinator/model_card.h"

#include "common/secret.h"

namespace shardwise {
namespace {

constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxAddressBytes = 255;
constexpr size_t kMaxSecretBytes = 128;
constexpr int kMaxContextLength = 1 << 24;
constexpr int kMaxVocabSize = 1 << 24;
constexpr int kMaxTp = 4096;
constexpr int kMaxCapacity = 1 << 16;

// Printable ASCII without spaces: names and addresses go into logs, labels and URLs.
bool is_plain_text(const std::string& text) {
  for (char c : text) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

Status validate_address(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (address.empty() || address.size() > kMaxAddressBytes || !is_plain_text(address) ||
      colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return invalid_argument("model card: address must be HOST:PORT (at most {} bytes), got '{}'",
                            kMaxAddressBytes, address.substr(0, kMaxAddressBytes));
  }
  const std::string port = address.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return invalid_argument("model card: address {}: the port must be 1..65535", address);
  }
  return ok_status();
}

Status check_payload(const char* what, const std::string& payload, size_t limit) {
  if (payload.size() <= limit) return ok_status();
  return invalid_argument("model card: {} is {} bytes, more than the registry's limit of {}", what,
                          payload.size(), limit);
}

}  // namespace

Status validate_model_card(const v1::ModelCard& card, const RegistrationLimits& limits) {
  if (card.name().empty() || card.name().size() > kMaxNameBytes || !is_plain_text(card.name())) {
    return invalid_argument("model card: name must be 1 to {} printable characters without spaces",
                            kMaxNameBytes);
  }
  SW_RETURN_IF_ERROR(validate_address(card.address()));
  SW_RETURN_IF_ERROR(
      check_payload("tokenizer_json", card.tokenizer_json(), limits.max_tokenizer_bytes));
  SW_RETURN_IF_ERROR(check_payload("tokenizer_config_json", card.tokenizer_config_json(),
                                   limits.max_tokenizer_config_bytes));
  SW_RETURN_IF_ERROR(check_payload("generation_config_json", card.generation_config_json(),
                                   limits.max_generation_config_bytes));
  if (card.context_length() < limits.min_context_length ||
      card.context_length() > kMaxContextLength) {
    return invalid_argument("model card {}: context_length must be in [{}, {}], got {}",
                            card.name(), limits.min_context_length, kMaxContextLength,
                            card.context_length());
  }
  if (card.vocab_size() < 0 || card.vocab_size() > kMaxVocabSize) {
    return invalid_argument("model card {}: vocab_size must be in [0, {}], got {}", card.name(),
                            kMaxVocabSize, card.vocab_size());
  }
  if (card.tp() < 1 || card.tp() > kMaxTp) {
    return invalid_argument("model card {}: tp must be in [1, {}], got {}", card.name(), kMaxTp,
                            card.tp());
  }
  if (card.capacity() < 1 || card.capacity() > kMaxCapacity) {
    return invalid_argument("model card {}: capacity must be in [1, {}], got {}", card.name(),
                            kMaxCapacity, card.capacity());
  }
  if (!v1::Device_IsValid(card.device())) {
    return invalid_argument("model card {}: unknown device {}", card.name(),
                            static_cast<int>(card.device()));
  }
  if (!card.dtype().empty() && card.dtype() != "f32" && card.dtype() != "f16" &&
      card.dtype() != "bf16") {
    return invalid_argument("model card {}: dtype must be f32, f16 or bf16", card.name());
  }
  if (card.instance_secret().size() > kMaxSecretBytes) {
    return invalid_argument("model card {}: instance_secret longer than {} bytes", card.name(),
                            kMaxSecretBytes);
  }
  return ok_status();
}

std::string tokenizer_digest(const v1::ModelCard& card) {
  std::string framed;
  for (const std::string* file :
       {&card.tokenizer_json(), &card.tokenizer_config_json(), &card.generation_config_json()}) {
    framed += std::to_string(file->size()) + ":";
    framed += *file;
  }
  return sha256_hex(framed);
}

v1::ModelCard without_payloads(const v1::ModelCard& card) {
  v1::ModelCard out = card;
  for (std::string* payload :
       {out.mutable_tokenizer_json(), out.mutable_tokenizer_config_json(),
        out.mutable_generation_config_json(), out.mutable_instance_secret()}) {
    std::string().swap(*payload);
  }
  return out;
}

Status check_same_model(const v1::ModelCard& card, const std::string& digest, const Replica& live) {
  std::string differs;
  if (digest != live.tokenizer_digest) differs = "its tokenizer files";
  if (card.context_length() != live.card.context_length()) {
    differs = fmt::format("context_length {} (theirs: {})", card.context_length(),
                          live.card.context_length());
  }
  if (card.vocab_size() != 0 && live.card.vocab_size() != 0 &&
      card.vocab_size() != live.card.vocab_size()) {
    differs = fmt::format("vocab_size {} (theirs: {})", card.vocab_size(), live.card.vocab_size());
  }
  if (differs.empty()) return ok_status();
  return failed_precondition(
      "model {}: this replica's card differs from the live replicas' ({}, e.g. {}): {}. Serve "
      "it under another --model-name, or stop the old replicas first",
      card.name(), live.card.address(), live.id, differs);
}

}  // namespace shardwise
