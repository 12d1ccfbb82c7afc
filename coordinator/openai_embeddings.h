// OpenAI's POST /v1/embeddings: the body -> v1::EmbedRequest (input as a string, a list of
// strings, token ids or a list of token-id lists; shardwise's extra "pooling": "mean" or
// "last"), and v1::EmbedResponse -> the response ("float" arrays, or "base64" of
// little-endian float32, as the official clients ask by default).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"
#include "shardwise/v1/inference.pb.h"

namespace shardwise {

struct OpenAiEmbeddingRequest {
  v1::EmbedRequest request;
  bool base64 = false;  // encoding_format "base64"
  int dimensions = 0;   // 0: not given; else it must be the model's hidden size
};

StatusOr<OpenAiEmbeddingRequest> parse_embedding_request(std::string_view body);
// INVALID_ARGUMENT when `dimensions` asked for another length than the model's.
StatusOr<nlohmann::json> embedding_response(const OpenAiEmbeddingRequest& request,
                                            const v1::EmbedResponse& response);

}  // namespace shardwise
