// Jinja filters, tests and global functions (declared in jinja_builtins.h).
#include <algorithm>
#include <cmath>
#include <ctime>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/utf8.h"
#include "tokenizer/whitespace.h"

namespace shardwise::tokenizer::jinja {
namespace {

Value attribute_of(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return subscript(item, attribute);
  // "a.b" walks nested attributes, as Jinja's make_attrgetter does.
  Value current = item;
  const std::string& path = attribute.as_string();
  std::size_t begin = 0;
  while (true) {
    const std::size_t dot = path.find('.', begin);
    current = subscript(
        current,
        Value(path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin)));
    if (dot == std::string::npos) return current;
    begin = dot + 1;
  }
}

int64_t length_of(const Value& v) {
  if (v.is_string()) {
    int64_t n = 0;
    for (const char c : v.as_string()) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
  }
  if (v.is_array()) return static_cast<int64_t>(v.as_array().size());
  if (v.is_object()) return static_cast<int64_t>(v.as_object().items.size());
  if (v.is_undefined()) return 0;
  fail("object of type {} has no length", v.type_name());
}

// select/reject/selectattr/rejectattr share this: keep items whose test result equals `keep`.
Value filter_items(const Value& input, Arguments& args, bool keep, bool by_attribute) {
  const std::size_t first = by_attribute ? 1 : 0;
  const Value attribute = by_attribute ? args.get(0, "attribute") : Value();
  Value test_name = args.get(first, "test");
  Arguments test_args;
  for (std::size_t i = first + 1; i < args.positional.size(); ++i)
    test_args.positional.push_back(args.positional[i]);
  Array out;
  for (const Value& item : iterate(input)) {
    const Value subject = by_attribute ? attribute_of(item, attribute) : item;
    const bool passed = test_name.is_undefined()
                            ? subject.truthy()
                            : apply_test(test_name.as_string(), subject, test_args);
    if (passed == keep) out.push_back(item);
  }
  return Value(std::move(out));
}

Value map_items(const Value& input, Arguments& args) {
  const Value attribute = args.keyword_only("attribute");
  Array out;
  if (!attribute.is_undefined()) {
    const Value fallback = args.keyword_only("default");
    for (const Value& item : iterate(input)) {
      Value mapped = attribute_of(item, attribute);
      out.push_back(mapped.is_undefined() && !fallback.is_undefined() ? fallback : mapped);
    }
    return Value(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string())
    fail("map needs a filter name or attribute=");
  const std::string name = args.positional[0].as_string();
  Arguments rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : iterate(input)) out.push_back(apply_filter(name, item, rest));
  return Value(std::move(out));
}

Value sort_items(const Value& input, Arguments& args) {
  Array items = iterate(input);
  const Value attribute = args.get(2, "attribute");
  const bool reverse = args.get(0, "reverse").truthy();
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const Value x = attribute.is_undefined() ? a : attribute_of(a, attribute);
    const Value y = attribute.is_undefined() ? b : attribute_of(b, attribute);
    return reverse ? less_than(y, x) : less_than(x, y);
  });
  return Value(std::move(items));
}

Value join_items(const Value& input, Arguments& args) {
  const Value separator = args.get(0, "d");
  const Value attribute = args.get(1, "attribute");
  std::string out;
  bool first = true;
  for (const Value& item : iterate(input)) {
    if (!first) out += separator.is_undefined() ? "" : separator.str();
    out += (attribute.is_undefined() ? item : attribute_of(item, attribute)).str();
    first = false;
  }
  return Value(out);
}

Value indent_text(const Value& input, Arguments& args) {
  const Value width_v = args.get(0, "width");
  const std::string pad = width_v.is_string()
                              ? width_v.as_string()
                              : std::string(width_v.is_int() ? width_v.as_int() : 4, ' ');
  const bool first = args.get(1, "first").truthy();
  const bool blank = args.get(2, "blank").truthy();
  const std::string text = input.str();
  std::string out;
  std::size_t begin = 0;
  bool first_line = true;
  while (begin <= text.size()) {
    const std::size_t end = text.find('\n', begin);
    const std::string line =
        text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if ((!first_line || first) && (blank || !line.empty())) out += pad;
    out += line;
    if (end == std::string::npos) break;
    out += '\n';
    begin = end + 1;
    first_line = false;
  }
  return Value(out);
}

Value tojson(const Value& input, Arguments& args) {
  const Value indent = args.get(0, "indent");
  if (!args.keyword_only("separators").is_undefined() || args.keyword_only("sort_keys").truthy()) {
    fail_unsupported("tojson: separators= and sort_keys= are not supported");
  }
  return Value(input.to_json(indent.is_int() ? static_cast<int>(indent.as_int()) : -1));
}

Value string_filter(const std::string& name, const Value& input, Arguments& args) {
  // These filters call the str method of the same name on str(input).
  Arguments method_args = args;
  if (name == "trim") {
    method_args.positional.resize(std::min<std::size_t>(method_args.positional.size(), 1));
    return bound_method(Value(input.str()), "strip")->as_function()(method_args);
  }
  return bound_method(Value(input.str()), name)->as_function()(method_args);
}

Value items_filter(const Value& input) {
  if (input.is_undefined()) return Value(Array{});
  if (!input.is_object()) fail("items filter needs a dict, got {}", input.type_name());
  Array out;
  for (const auto& [key, value] : input.as_object().items)
    out.push_back(Value(Array{Value(key), value}));
  return Value(std::move(out));
}

}  // namespace

Value apply_filter(const std::string& name, const Value& input, Arguments& args) {
  if (name == "trim" || name == "upper" || name == "lower" || name == "title" ||
      name == "capitalize" || name == "replace") {
    return string_filter(name, input, args);
  }
  if (name == "length" || name == "count") return Value(length_of(input));
  if (name == "tojson") return tojson(input, args);
  if (name == "string") return Value(input.str());
  if (name == "safe" || name == "e" || name == "escape") return input;  // autoescape is off
  if (name == "list") return Value(iterate(input));
  if (name == "items") return items_filter(input);
  if (name == "join") return join_items(input, args);
  if (name == "first" || name == "last") {
    const Array items = iterate(input);
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "default" || name == "d") {
    const bool boolean = args.get(1, "boolean").truthy();
    const bool use_default = input.is_undefined() || (boolean && !input.truthy());
    if (!use_default) return input;
    const Value fallback = args.get(0, "default_value");
    return fallback.is_undefined() ? Value("") : fallback;
  }
  if (name == "select" || name == "reject")
    return filter_items(input, args, name == "select", false);
  if (name == "selectattr" || name == "rejectattr")
    return filter_items(input, args, name == "selectattr", true);
  if (name == "map") return map_items(input, args);
  if (name == "sort") return sort_items(input, args);
  if (name == "reverse") {
    if (input.is_string()) return slice(input, Value(), Value(), Value(int64_t{-1}));
    Array items = iterate(input);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "unique") {
    Array out;
    for (const Value& item : iterate(input)) {
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    }
    return Value(std::move(out));
  }
  if (name == "indent") return indent_text(input, args);
  if (name == "int") {
    if (input.is_number()) return Value(static_cast<int64_t>(input.as_number()));
    if (input.is_string()) {
      try {
        return Value(static_cast<int64_t>(std::stoll(input.as_string())));
      } catch (const std::exception&) {
      }
    }
    const Value fallback = args.get(0, "default");
    return fallback.is_undefined() ? Value(int64_t{0}) : fallback;
  }
  if (name == "float") {
    if (input.is_number()) return Value(input.as_number());
    return Value(0.0);
  }
  if (name == "abs")
    return input.is_int() ? Value(std::abs(input.as_int())) : Value(std::fabs(input.as_number()));
  if (name == "sum") {
    Value total(int64_t{0});
    for (const Value& item : iterate(input)) total = binary_operator("+", total, item);
    return total;
  }
  if (name == "min" || name == "max") {
    const Array items = iterate(input);
    if (items.empty()) return Value();
    return name == "min" ? *std::min_element(items.begin(), items.end(), less_than)
                         : *std::max_element(items.begin(), items.end(), less_than);
  }
  if (name == "wordcount")
    return bound_method(Value(input.str()), "split")->as_function()(args).as_array().size();
  fail_unsupported("unsupported Jinja filter '{}'", name);
}

bool apply_test(const std::string& name, const Value& v, Arguments& args) {
  const Value other = args.get(0, "other");
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_object();
  if (name == "iterable") return v.is_array() || v.is_object() || v.is_string();
  if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (name == "callable") return v.is_callable();
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return v == other;
  if (name == "ne" || name == "!=") return !(v == other);
  if (name == "lt" || name == "lessthan") return less_than(v, other);
  if (name == "gt" || name == "greaterthan") return less_than(other, v);
  if (name == "le") return !less_than(other, v);
  if (name == "ge") return !less_than(v, other);
  if (name == "in") return contains(other, v);
  if (name == "odd" || name == "even") {
    if (!v.is_int()) fail("'{}' test needs an integer", name);
    return (v.as_int() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby")
    return v.is_int() && other.is_int() && other.as_int() != 0 && v.as_int() % other.as_int() == 0;
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    const std::string& s = v.as_string();
    return std::none_of(s.begin(), s.end(), [&](char c) {
      return name == "lower" ? std::isupper(static_cast<unsigned char>(c))
                             : std::islower(static_cast<unsigned char>(c));
    });
  }
  fail_unsupported("unsupported Jinja test '{}'", name);
}

std::optional<Value> global_function(const std::string& name) {
  if (name == "raise_exception") {
    return Value(
        Function([](Arguments& args) -> Value { fail("{}", args.get(0, "message").str()); }));
  }
  if (name == "strftime_now") {
    return Value(Function([](Arguments& args) -> Value {
      const std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buffer[256];
      const std::size_t n =
          std::strftime(buffer, sizeof(buffer), args.get(0, "format").str().c_str(), &local);
      return Value(std::string(buffer, n));
    }));
  }
  if (name == "namespace" || name == "dict") {
    const bool is_namespace = name == "namespace";
    return Value(Function([is_namespace](Arguments& args) -> Value {
      auto object = make_object();
      object->is_namespace = is_namespace;
      for (const Value& initial : args.positional) {
        if (initial.is_object()) {
          for (const auto& [key, value] : initial.as_object().items) object->set(key, value);
        }
      }
      for (const auto& [key, value] : args.keyword) object->set(key, value);
      return Value(object);
    }));
  }
  if (name == "range") {
    return Value(Function([](Arguments& args) -> Value {
      const std::size_t n = args.positional.size();
      for (const Value& v : args.positional) {
        if (!v.is_int()) fail("range() needs integers");
      }
      const int64_t start = n >= 2 ? args.positional[0].as_int() : 0;
      const int64_t stop = n >= 2   ? args.positional[1].as_int()
                           : n == 1 ? args.positional[0].as_int()
                                    : 0;
      const int64_t step = n >= 3 ? args.positional[2].as_int() : 1;
      if (step == 0) fail("range() step must not be zero");
      Array out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        out.push_back(Value(i));
        if (out.size() > 1000000) fail("range() too large");
      }
      return Value(std::move(out));
    }));
  }
  return std::nullopt;
}

}  // namespace shardwise::tokenizer::jinja
