#include "coordinator/openai_embeddings.h"

#include <cstring>
#include <set>

#include "coordinator/generation.h"

namespace shardwise {
namespace {

using json = nlohmann::json;

bool is_token_ids(const json& value) {
  return value.is_array() && !value.empty() &&
         std::all_of(value.begin(), value.end(), [](const json& v) {
           return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX;
         });
}

void add_token_ids(const json& ids, v1::EmbedRequest& request) {
  v1::TokenIds* out = request.add_inputs()->mutable_token_ids();
  for (const json& id : ids) out->add_ids(id.get<int32_t>());
}

Status parse_input(const json& input, v1::EmbedRequest& request) {
  if (input.is_string()) {
    request.add_inputs()->set_text(input.get<std::string>());
    return ok_status();
  }
  if (is_token_ids(input)) {
    add_token_ids(input, request);
    return ok_status();
  }
  if (!input.is_array() || input.empty()) {
    return invalid_argument(
        "'input' must be a string, an array of strings, an array of token ids or an array of "
        "token-id arrays");
  }
  for (const json& item : input) {
    if (item.is_string()) {
      request.add_inputs()->set_text(item.get<std::string>());
    } else if (is_token_ids(item)) {
      add_token_ids(item, request);
    } else {
      return invalid_argument("'input' holds a {}: expected strings or arrays of token ids",
                              item.type_name());
    }
  }
  return ok_status();
}

std::string base64(const std::vector<float>& values) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(values.size() * sizeof(float), '\0');  // little-endian, as the host
  std::memcpy(bytes.data(), values.data(), bytes.size());
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

}  // namespace

StatusOr<OpenAiEmbeddingRequest> parse_embedding_request(std::string_view text) {
  const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return invalid_argument("the request body is not valid JSON");
  if (!body.is_object()) return invalid_argument("the request body must be a JSON object");
  static const std::set<std::string> kFields = {"model",      "input", "encoding_format",
                                                "dimensions", "user",  "pooling"};
  for (const auto& [key, value] : body.items()) {
    if (!kFields.contains(key))
      return invalid_argument("unknown field '{}' for /v1/embeddings", key);
  }
  OpenAiEmbeddingRequest out;
  auto model = body.find("model");
  if (model == body.end() || !model->is_string() || model->get<std::string>().empty()) {
    return invalid_argument("'model' is required");
  }
  out.request.set_model(model->get<std::string>());
  auto input = body.find("input");
  if (input == body.end()) return invalid_argument("'input' is required");
  SW_RETURN_IF_ERROR(parse_input(*input, out.request));
  if (auto it = body.find("encoding_format"); it != body.end() && !it->is_null()) {
    if (*it != "float" && *it != "base64") {
      return invalid_argument("'encoding_format' must be \"float\" or \"base64\", got {}",
                              it->dump());
    }
    out.base64 = *it == "base64";
  }
  if (auto it = body.find("dimensions"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 1 << 20) {
      return invalid_argument("'dimensions' must be a positive integer, got {}", it->dump());
    }
    out.dimensions = it->get<int>();
  }
  if (auto it = body.find("pooling"); it != body.end() && !it->is_null()) {
    if (*it != "mean" && *it != "last") {
      return invalid_argument("'pooling' must be \"mean\" or \"last\", got {}", it->dump());
    }
    out.request.set_pooling(*it == "last" ? v1::POOLING_LAST : v1::POOLING_MEAN);
  }
  if (auto it = body.find("user"); it != body.end() && !it->is_null() && !it->is_string()) {
    return invalid_argument("'user' must be a string");
  }
  return out;
}

StatusOr<json> embedding_response(const OpenAiEmbeddingRequest& request,
                                  const v1::EmbedResponse& response) {
  json data = json::array();
  for (int i = 0; i < response.embeddings_size(); ++i) {
    const auto& values = response.embeddings(i).values();
    if (request.dimensions > 0 && request.dimensions != values.size()) {
      return invalid_argument(
          "'dimensions' {} is not supported: the model's embeddings have {} (its hidden size)",
          request.dimensions, values.size());
    }
    std::vector<float> vector(values.begin(), values.end());
    data.push_back({{"object", "embedding"},
                    {"index", i},
                    {"embedding", request.base64 ? json(base64(vector)) : json(vector)}});
  }
  const int tokens = response.usage().prompt_tokens();
  return json{{"object", "list"},
              {"data", std::move(data)},
              {"model", request.request.model()},
              {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
}

}  // namespace shardwise
