#include "common/secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>
#include <vector>

#include "common/check.h"

namespace shardwise {
namespace {

std::string to_hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(2 * size, '0');
  for (size_t i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[data[i] >> 4];
    hex[2 * i + 1] = kDigits[data[i] & 15];
  }
  return hex;
}

}  // namespace

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> data(bytes);
  SW_CHECK(RAND_bytes(data.data(), static_cast<int>(bytes)) == 1);
  return to_hex(data.data(), bytes);
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  SW_CHECK(EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) == 1);
  return to_hex(digest, size);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

StatusOr<std::string> read_cluster_token(const std::string& path) {
  if (path.empty()) return std::string();
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return not_found("cluster token file {}: cannot read", path);
  const size_t first = line.find_first_not_of(" \t\r");
  const size_t last = line.find_last_not_of(" \t\r");
  const std::string token = first == std::string::npos ? "" : line.substr(first, last - first + 1);
  if (token.size() < 16 || token.size() > 4096) {
    return invalid_argument(
        "cluster token file {}: the token must be 16 to 4096 characters, got {}", path,
        token.size());
  }
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return invalid_argument(
          "cluster token file {}: the token must be printable ASCII without spaces", path);
    }
  }
  return token;
}

}  // namespace shardwise
