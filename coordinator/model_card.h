// The checks a model card passes before the registry holds it: well-formed fields in sane
// ranges and payloads within RegistrationLimits, and the identity that the replicas of one model
// must share (tokenizer files, context length, vocabulary).
#pragma once

#include <string>

#include "common/status.h"
#include "coordinator/registry.h"

namespace shardwise {

// INVALID_ARGUMENT naming the first field that is missing, malformed or out of range.
Status validate_model_card(const v1::ModelCard& card, const RegistrationLimits& limits);

// SHA-256 over the card's tokenizer files (each length-prefixed, so no two sets collide by
// moving bytes between files).
std::string tokenizer_digest(const v1::ModelCard& card);

// `card` without its tokenizer files and instance secret, their memory released (a cleared
// string keeps its capacity: a registry of stripped copies would still hold every payload).
v1::ModelCard without_payloads(const v1::ModelCard& card);

// FAILED_PRECONDITION when `card` (with tokenizer digest `digest`) cannot serve alongside
// `live`, a live replica of the same model: what differs, and how to resolve it.
Status check_same_model(const v1::ModelCard& card, const std::string& digest, const Replica& live);

}  // namespace shardwise
