#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cctype>

#include "tokenizer/jinja_value.h"
#include "tokenizer/utf8.h"

namespace shardwise::tokenizer::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// A tag as found in the source, before whitespace control is applied to its neighbours.
struct RawTag {
  char kind;  // '{' variable, '%' block, '#' comment
  std::string_view inner;
  bool strip_before = false;  // {%-
  bool keep_before = false;   // {%+ (disables lstrip_blocks)
  bool strip_after = false;   // -%}
  bool keep_after = false;    // +%} (disables trim_blocks)
  int line = 1;
};

struct RawSegment {
  bool is_tag;
  std::string text;  // for text segments
  RawTag tag;
};

int count_lines(std::string_view text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

std::size_t find_tag_end(std::string_view source, std::size_t pos, char kind, int line) {
  if (kind == '#') {
    const std::size_t end = source.find("#}", pos);
    if (end == std::string_view::npos) fail("line {}: unterminated comment", line);
    return end;
  }
  const std::string_view close = kind == '{' ? "}}" : "%}";
  char quote = 0;
  for (std::size_t i = pos; i + 1 < source.size(); ++i) {
    const char c = source[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      continue;
    }
    if (source.compare(i, 2, close) == 0) return i;
  }
  fail("line {}: unterminated '{{{}' tag", line, kind);
}

std::vector<RawSegment> split_segments(std::string_view source) {
  std::vector<RawSegment> segments;
  std::size_t pos = 0;
  int line = 1;
  while (pos < source.size()) {
    std::size_t open = pos;
    while ((open = source.find('{', open)) != std::string_view::npos && open + 1 < source.size() &&
           source[open + 1] != '{' && source[open + 1] != '%' && source[open + 1] != '#') {
      ++open;
    }
    if (open == std::string_view::npos || open + 1 >= source.size()) {
      segments.push_back({false, std::string(source.substr(pos)), {}});
      break;
    }
    if (open > pos) segments.push_back({false, std::string(source.substr(pos, open - pos)), {}});
    line += count_lines(source.substr(pos, open - pos));
    RawTag tag;
    tag.kind = source[open + 1];
    tag.line = line;
    std::size_t inner_begin = open + 2;
    if (inner_begin < source.size() && (source[inner_begin] == '-' || source[inner_begin] == '+')) {
      (source[inner_begin] == '-' ? tag.strip_before : tag.keep_before) = true;
      ++inner_begin;
    }
    const std::size_t close = find_tag_end(source, inner_begin, tag.kind, line);
    std::size_t inner_end = close;
    if (inner_end > inner_begin && (source[inner_end - 1] == '-' || source[inner_end - 1] == '+')) {
      (source[inner_end - 1] == '-' ? tag.strip_after : tag.keep_after) = true;
      --inner_end;
    }
    tag.inner = source.substr(inner_begin, inner_end - inner_begin);
    line += count_lines(source.substr(open, close + 2 - open));
    segments.push_back({true, "", tag});
    pos = close + 2;
  }
  return segments;
}

// Applies '-' markers, trim_blocks and lstrip_blocks to the text between tags.
void apply_whitespace_control(std::vector<RawSegment>& segments) {
  bool line_starting = true;  // the text begins at the start of a line
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (segments[i].is_tag) continue;
    std::string& text = segments[i].text;
    const RawTag* before = i > 0 ? &segments[i - 1].tag : nullptr;
    const RawTag* after = i + 1 < segments.size() ? &segments[i + 1].tag : nullptr;
    if (before != nullptr) {
      line_starting = false;
      if (before->strip_after) {
        const std::size_t n = std::find_if_not(text.begin(), text.end(), is_space) - text.begin();
        line_starting = text.substr(0, n).find('\n') != std::string::npos;
        text.erase(0, n);
      } else if (before->kind != '{' && !before->keep_after && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
        line_starting = true;
      }
    }
    if (after != nullptr) {
      if (after->strip_before) {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (after->kind != '{' && !after->keep_before) {
        const std::size_t line_begin = text.rfind('\n');
        const std::size_t from = line_begin == std::string::npos ? 0 : line_begin + 1;
        const bool blank = text.find_first_not_of(" \t", from) == std::string::npos;
        if (blank && (line_begin != std::string::npos || line_starting)) text.erase(from);
      }
    }
  }
}

void lex_tag(const RawTag& tag, std::vector<Token>& out);

}  // namespace

std::vector<Token> lex(std::string_view source) {
  std::string trimmed(source);
  // keep_trailing_newline is off in transformers: one final newline is dropped.
  if (trimmed.ends_with("\r\n")) {
    trimmed.resize(trimmed.size() - 2);
  } else if (trimmed.ends_with('\n')) {
    trimmed.pop_back();
  }
  std::vector<RawSegment> segments = split_segments(trimmed);
  // Make sure every tag has text neighbours so the rules above see each boundary.
  std::vector<RawSegment> padded;
  for (RawSegment& segment : segments) {
    if (segment.is_tag && (padded.empty() || padded.back().is_tag)) {
      padded.push_back({false, "", {}});
    }
    padded.push_back(std::move(segment));
  }
  if (!padded.empty() && padded.back().is_tag) padded.push_back({false, "", {}});
  apply_whitespace_control(padded);

  std::vector<Token> tokens;
  for (const RawSegment& segment : padded) {
    if (!segment.is_tag) {
      if (!segment.text.empty()) tokens.push_back({Token::Kind::kText, segment.text, 0});
      continue;
    }
    if (segment.tag.kind == '#') continue;
    lex_tag(segment.tag, tokens);
  }
  tokens.push_back({Token::Kind::kEnd, "", 0});
  return tokens;
}

namespace {

constexpr std::string_view kOperators[] = {"**", "//", "==", "!=", "<=", ">=", "(", ")", "[",
                                           "]",  "{",  "}",  ",",  ".",  ":",  "|", "+", "-",
                                           "*",  "/",  "%",  "~",  "<",  ">",  "="};

std::string read_string(std::string_view inner, std::size_t& pos, int line) {
  const char quote = inner[pos++];
  std::string value;
  while (pos < inner.size() && inner[pos] != quote) {
    char c = inner[pos++];
    if (c != '\\' || pos >= inner.size()) {
      value += c;
      continue;
    }
    c = inner[pos++];
    switch (c) {
      case 'n':
        value += '\n';
        break;
      case 't':
        value += '\t';
        break;
      case 'r':
        value += '\r';
        break;
      case '0':
        value += '\0';
        break;
      case 'u': {
        if (pos + 4 > inner.size()) fail("line {}: bad \\u escape", line);
        append_utf8(value, static_cast<char32_t>(
                               std::stoul(std::string(inner.substr(pos, 4)), nullptr, 16)));
        pos += 4;
        break;
      }
      default:
        value += c;  // \\ \' \" and unknown escapes keep the character
    }
  }
  if (pos >= inner.size()) fail("line {}: unterminated string", line);
  ++pos;
  return value;
}

void lex_tag(const RawTag& tag, std::vector<Token>& out) {
  const bool is_var = tag.kind == '{';
  out.push_back({is_var ? Token::Kind::kVarBegin : Token::Kind::kBlockBegin, "", tag.line});
  const std::string_view inner = tag.inner;
  std::size_t pos = 0;
  while (pos < inner.size()) {
    const char c = inner[pos];
    if (is_space(c)) {
      ++pos;
    } else if (c == '\'' || c == '"') {
      out.push_back({Token::Kind::kString, read_string(inner, pos, tag.line), tag.line});
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t end = pos;
      while (end < inner.size() &&
             (std::isdigit(static_cast<unsigned char>(inner[end])) || inner[end] == '_'))
        ++end;
      bool is_float = false;
      if (end + 1 < inner.size() && inner[end] == '.' &&
          std::isdigit(static_cast<unsigned char>(inner[end + 1]))) {
        is_float = true;
        ++end;
        while (end < inner.size() && std::isdigit(static_cast<unsigned char>(inner[end]))) ++end;
      }
      out.push_back({is_float ? Token::Kind::kFloat : Token::Kind::kInt,
                     std::string(inner.substr(pos, end - pos)), tag.line});
      pos = end;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t end = pos;
      while (end < inner.size() &&
             (std::isalnum(static_cast<unsigned char>(inner[end])) || inner[end] == '_'))
        ++end;
      out.push_back({Token::Kind::kName, std::string(inner.substr(pos, end - pos)), tag.line});
      pos = end;
    } else {
      const auto op =
          std::find_if(std::begin(kOperators), std::end(kOperators),
                       [&](std::string_view o) { return inner.substr(pos, o.size()) == o; });
      if (op == std::end(kOperators)) fail("line {}: unexpected character '{}'", tag.line, c);
      out.push_back({Token::Kind::kOperator, std::string(*op), tag.line});
      pos += op->size();
    }
  }
  out.push_back({is_var ? Token::Kind::kVarEnd : Token::Kind::kBlockEnd, "", tag.line});
}

}  // namespace
}  // namespace shardwise::tokenizer::jinja
