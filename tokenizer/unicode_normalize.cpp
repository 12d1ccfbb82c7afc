#include "tokenizer/unicode_normalize.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>

namespace shardwise::tokenizer {
namespace {

const icu::Normalizer2* instance(NormalizationForm form, UErrorCode& error) {
  switch (form) {
    case NormalizationForm::kNfc:
      return icu::Normalizer2::getNFCInstance(error);
    case NormalizationForm::kNfd:
      return icu::Normalizer2::getNFDInstance(error);
    case NormalizationForm::kNfkc:
      return icu::Normalizer2::getNFKCInstance(error);
    case NormalizationForm::kNfkd:
      return icu::Normalizer2::getNFKDInstance(error);
  }
  return nullptr;
}

}  // namespace

StatusOr<std::string> unicode_normalize(std::string_view text, NormalizationForm form) {
  // ASCII is invariant under every form; most text is, so skip the UTF-16 round trip.
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(text);
  }
  UErrorCode error = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = instance(form, error);
  if (U_FAILURE(error) || normalizer == nullptr) {
    return internal_error("ICU normalizer unavailable: {}", u_errorName(error));
  }
  const icu::UnicodeString input = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (normalizer->isNormalized(input, error) && U_SUCCESS(error)) return std::string(text);
  error = U_ZERO_ERROR;
  const icu::UnicodeString output = normalizer->normalize(input, error);
  if (U_FAILURE(error)) return internal_error("ICU normalization failed: {}", u_errorName(error));
  std::string result;
  output.toUTF8String(result);
  return result;
}

}  // namespace shardwise::tokenizer
