#include "tokenizer/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "tokenizer/utf8.h"
#include "tokenizer/whitespace.h"

namespace shardwise::tokenizer::jinja {
namespace {

const std::string& require_string(const Value& v, std::string_view what) {
  if (!v.is_string()) fail("{} needs a string, got {}", what, v.type_name());
  return v.as_string();
}

// Code points of valid UTF-8 text (template strings come from JSON and literals).
std::vector<std::string> characters(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t length = utf8_sequence_length(s, pos);
    if (length == 0) length = 1;
    out.push_back(s.substr(pos, length));
    pos += length;
  }
  return out;
}

// Python's str.strip/lstrip/rstrip: whitespace, or any of the characters in `chars`.
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  if (chars.is_undefined() || chars.is_none()) {
    std::string_view view = s;
    if (left) view = strip_leading_whitespace(view);
    if (right) view = strip_trailing_whitespace(view);
    return std::string(view);
  }
  const std::vector<std::string> set = characters(require_string(chars, "strip"));
  const auto in_set = [&](const std::string& c) {
    return std::find(set.begin(), set.end(), c) != set.end();
  };
  std::vector<std::string> text = characters(s);
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (left && begin < end && in_set(text[begin])) ++begin;
  while (right && end > begin && in_set(text[end - 1])) --end;
  std::string out;
  for (std::size_t i = begin; i < end; ++i) out += text[i];
  return out;
}

Value split(const std::string& s, const Value& separator, const Value& max_split) {
  const int64_t limit = max_split.is_int() ? max_split.as_int() : -1;
  Array parts;
  if (separator.is_undefined() || separator.is_none()) {
    std::size_t pos = 0;
    while (true) {
      while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
      if (pos >= s.size()) break;
      if (limit >= 0 && static_cast<int64_t>(parts.size()) == limit) {
        parts.push_back(
            Value(std::string(strip_trailing_whitespace(std::string_view(s).substr(pos)))));
        break;
      }
      std::size_t end = pos;
      while (end < s.size() && !std::isspace(static_cast<unsigned char>(s[end]))) ++end;
      parts.push_back(Value(s.substr(pos, end - pos)));
      pos = end;
    }
    return Value(std::move(parts));
  }
  const std::string& sep = require_string(separator, "split");
  if (sep.empty()) fail("split: empty separator");
  std::size_t begin = 0;
  for (std::size_t pos = s.find(sep); pos != std::string::npos; pos = s.find(sep, begin)) {
    if (limit >= 0 && static_cast<int64_t>(parts.size()) == limit) break;
    parts.push_back(Value(s.substr(begin, pos - begin)));
    begin = pos + sep.size();
  }
  parts.push_back(Value(s.substr(begin)));
  return Value(std::move(parts));
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to,
                        int64_t count) {
  if (from.empty()) return s;
  std::string out;
  std::size_t begin = 0;
  int64_t done = 0;
  for (std::size_t pos = s.find(from); pos != std::string::npos && (count < 0 || done < count);
       pos = s.find(from, begin), ++done) {
    out.append(s, begin, pos - begin);
    out += to;
    begin = pos + from.size();
  }
  out.append(s, begin, std::string::npos);
  return out;
}

std::string map_ascii(std::string s, int (*f)(int)) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x80)
      c = static_cast<char>(f(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (alpha) c = static_cast<char>(start ? std::toupper(c) : std::tolower(c));
    start = !alpha;
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out = map_ascii(s, [](int c) { return std::tolower(c); });
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

bool string_affix(const std::string& s, const Value& affix, bool prefix) {
  const auto check = [&](const Value& a) {
    const std::string& text = require_string(a, prefix ? "startswith" : "endswith");
    return prefix ? s.starts_with(text) : s.ends_with(text);
  };
  if (affix.is_array()) {
    return std::any_of(affix.as_array().begin(), affix.as_array().end(), check);
  }
  return check(affix);
}

std::optional<Value> string_method(const std::string& s, const std::string& name, Arguments& args) {
  if (name == "strip") return Value(strip(s, args.get(0, "chars"), true, true));
  if (name == "lstrip") return Value(strip(s, args.get(0, "chars"), true, false));
  if (name == "rstrip") return Value(strip(s, args.get(0, "chars"), false, true));
  if (name == "startswith") return Value(string_affix(s, args.get(0, "prefix"), true));
  if (name == "endswith") return Value(string_affix(s, args.get(0, "suffix"), false));
  if (name == "split") return split(s, args.get(0, "sep"), args.get(1, "maxsplit"));
  if (name == "upper") return Value(map_ascii(s, [](int c) { return std::toupper(c); }));
  if (name == "lower") return Value(map_ascii(s, [](int c) { return std::tolower(c); }));
  if (name == "title") return Value(title_case(s));
  if (name == "capitalize") return Value(capitalize(s));
  if (name == "replace") {
    const Value count = args.get(2, "count");
    return Value(replace_all(s, require_string(args.get(0, "old"), "replace"),
                             require_string(args.get(1, "new"), "replace"),
                             count.is_int() ? count.as_int() : -1));
  }
  if (name == "find") {
    const std::size_t pos = s.find(require_string(args.get(0, "sub"), "find"));
    return Value(pos == std::string::npos ? int64_t{-1} : static_cast<int64_t>(pos));
  }
  if (name == "count") {
    const std::string& sub = require_string(args.get(0, "sub"), "count");
    int64_t n = 0;
    for (std::size_t pos = s.find(sub); !sub.empty() && pos != std::string::npos;
         pos = s.find(sub, pos + sub.size()))
      ++n;
    return Value(n);
  }
  if (name == "join") {
    std::string out;
    const Array items = iterate(args.get(0, "iterable"));
    for (std::size_t i = 0; i < items.size(); ++i) out += (i > 0 ? s : "") + items[i].str();
    return Value(out);
  }
  if (name == "isdigit") {
    return Value(!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c));
    }));
  }
  if (name == "isspace") return Value(!s.empty() && strip_leading_whitespace(s).empty());
  return std::nullopt;
}

std::optional<Value> dict_method(const Value& dict, const std::string& name, Arguments& args) {
  const Object& object = dict.as_object();
  if (name == "items") {
    Array items;
    for (const auto& [key, value] : object.items) items.push_back(Value(Array{Value(key), value}));
    return Value(std::move(items));
  }
  if (name == "keys" || name == "values") {
    Array items;
    for (const auto& [key, value] : object.items)
      items.push_back(name == "keys" ? Value(key) : value);
    return Value(std::move(items));
  }
  if (name == "get") {
    const Value key = args.get(0, "key");
    const Value* found = key.is_string() ? object.find(key.as_string()) : nullptr;
    if (found != nullptr) return *found;
    const Value fallback = args.get(1, "default");
    return fallback.is_undefined() ? Value(nullptr) : fallback;
  }
  return std::nullopt;
}

int64_t python_mod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

Value arithmetic(const std::string& op, const Value& l, const Value& r) {
  if (!l.is_number() || !r.is_number()) {
    fail("operator '{}' is not defined for {} and {}", op, l.type_name(), r.type_name());
  }
  const bool ints = l.is_int() && r.is_int();
  if (op == "+")
    return ints ? Value(l.as_int() + r.as_int()) : Value(l.as_number() + r.as_number());
  if (op == "-")
    return ints ? Value(l.as_int() - r.as_int()) : Value(l.as_number() - r.as_number());
  if (op == "*")
    return ints ? Value(l.as_int() * r.as_int()) : Value(l.as_number() * r.as_number());
  if (op == "**") {
    if (ints && r.as_int() >= 0)
      return Value(static_cast<int64_t>(std::llround(std::pow(l.as_number(), r.as_number()))));
    return Value(std::pow(l.as_number(), r.as_number()));
  }
  if (r.as_number() == 0) fail("division by zero");
  if (op == "/") return Value(l.as_number() / r.as_number());
  if (op == "//") {
    if (ints) return Value((l.as_int() - python_mod(l.as_int(), r.as_int())) / r.as_int());
    return Value(std::floor(l.as_number() / r.as_number()));
  }
  if (ints) return Value(python_mod(l.as_int(), r.as_int()));
  const double m = std::fmod(l.as_number(), r.as_number());
  return Value(m != 0 && ((m < 0) != (r.as_number() < 0)) ? m + r.as_number() : m);
}

}  // namespace

Array iterate(const Value& value) {
  if (value.is_array()) return value.as_array();
  if (value.is_object()) {
    Array keys;
    for (const auto& [key, item] : value.as_object().items) keys.push_back(Value(key));
    return keys;
  }
  if (value.is_string()) {
    Array chars;
    for (std::string& c : characters(value.as_string())) chars.push_back(Value(std::move(c)));
    return chars;
  }
  if (value.is_undefined() || value.is_none()) {
    if (value.is_none()) fail("'NoneType' object is not iterable");
    return {};
  }
  fail("'{}' object is not iterable", value.type_name());
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.as_number() < b.as_number();
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_bool() && b.is_bool()) return a.as_bool() < b.as_bool();
  if (a.is_array() && b.is_array()) {
    const Array& x = a.as_array();
    const Array& y = b.as_array();
    for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      if (less_than(x[i], y[i])) return true;
      if (less_than(y[i], x[i])) return false;
    }
    return x.size() < y.size();
  }
  fail("'<' is not supported between {} and {}", a.type_name(), b.type_name());
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string())
    return container.as_string().find(require_string(item, "'in' on a string")) !=
           std::string::npos;
  if (container.is_array()) {
    const Array& array = container.as_array();
    return std::find(array.begin(), array.end(), item) != array.end();
  }
  if (container.is_object())
    return item.is_string() && container.as_object().find(item.as_string()) != nullptr;
  if (container.is_undefined()) return false;
  fail("'in' is not supported for {}", container.type_name());
}

Value binary_operator(const std::string& op, const Value& l, const Value& r) {
  if (op == "==") return Value(l == r);
  if (op == "!=") return Value(!(l == r));
  if (op == "<") return Value(less_than(l, r));
  if (op == ">") return Value(less_than(r, l));
  if (op == "<=") return Value(!less_than(r, l));
  if (op == ">=") return Value(!less_than(l, r));
  if (op == "in") return Value(contains(r, l));
  if (op == "not in") return Value(!contains(r, l));
  if (op == "~") return Value(l.str() + r.str());
  if (op == "+") {
    if (l.is_string() && r.is_string()) return Value(l.as_string() + r.as_string());
    if (l.is_array() && r.is_array()) {
      Array joined = l.as_array();
      joined.insert(joined.end(), r.as_array().begin(), r.as_array().end());
      return Value(std::move(joined));
    }
  }
  if (op == "*" && l.is_string() && r.is_int()) {
    std::string out;
    for (int64_t i = 0; i < r.as_int(); ++i) out += l.as_string();
    return Value(out);
  }
  if (op == "%" && l.is_string())
    fail_unsupported("printf-style '%' string formatting is not supported");
  return arithmetic(op, l, r);
}

Value subscript(const Value& value, const Value& index) {
  if (value.is_object()) {
    if (index.is_string()) {
      if (const Value* found = value.as_object().find(index.as_string())) return *found;
      if (auto method = bound_method(value, index.as_string())) return *method;
    }
    return Value();
  }
  if (value.is_array() || value.is_string()) {
    if (!index.is_int()) {
      if (index.is_string()) {
        if (auto method = bound_method(value, index.as_string())) return *method;
      }
      fail("{} indices must be integers", value.type_name());
    }
    const Array items = value.is_array() ? Array() : iterate(value);
    const Array& source = value.is_array() ? value.as_array() : items;
    int64_t i = index.as_int();
    if (i < 0) i += static_cast<int64_t>(source.size());
    if (i < 0 || i >= static_cast<int64_t>(source.size()))
      fail("{} index out of range", value.type_name());
    return source[static_cast<std::size_t>(i)];
  }
  if (value.is_undefined()) return Value();
  fail("'{}' object is not subscriptable", value.type_name());
}

Value slice(const Value& value, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const Array items = iterate(value);
  const auto n = static_cast<int64_t>(items.size());
  const int64_t step = step_v.is_int() ? step_v.as_int() : 1;
  if (step == 0) fail("slice step cannot be zero");
  // Python's slice.indices().
  const auto clamp = [&](const Value& v, int64_t fallback) {
    if (!v.is_int()) return fallback;
    int64_t i = v.as_int();
    if (i < 0) i += n;
    if (step > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t start = clamp(start_v, step > 0 ? 0 : n - 1);
  const int64_t stop = clamp(stop_v, step > 0 ? n : -1);
  Array out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
    out.push_back(items[static_cast<std::size_t>(i)]);
  if (!value.is_string()) return Value(std::move(out));
  std::string text;
  for (const Value& c : out) text += c.as_string();
  return Value(text);
}

std::optional<Value> bound_method(const Value& value, const std::string& name) {
  if (value.is_string()) {
    const std::string s = value.as_string();
    return Value(Function([s, name](Arguments& args) -> Value {
      if (auto result = string_method(s, name, args)) return *result;
      fail_unsupported("unsupported string method '{}'", name);
    }));
  }
  if (value.is_object() && !value.as_object().is_namespace) {
    if (name != "items" && name != "keys" && name != "values" && name != "get") return std::nullopt;
    return Value(Function(
        [value, name](Arguments& args) -> Value { return *dict_method(value, name, args); }));
  }
  return std::nullopt;
}

}  // namespace shardwise::tokenizer::jinja
