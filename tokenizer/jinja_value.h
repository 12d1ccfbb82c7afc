// Values of the Jinja subset used by chat templates, with Python semantics where templates
// can observe them: str() of None/True/lists, dict insertion order, json.dumps formatting.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace shardwise::tokenizer::jinja {

// Raised while parsing or rendering; caught at the Template boundary and returned as a Status.
class Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  StatusCode code() const { return code_; }

 private:
  StatusCode code_;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(StatusCode::kInvalidArgument, fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail_unsupported(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(StatusCode::kUnimplemented, fmt::format(format, std::forward<Args>(args)...));
}

class Value;
using Array = std::vector<Value>;
struct Object;
struct Arguments;
using Function = std::function<Value(Arguments&)>;

struct Undefined {};

class Value {
 public:
  Value() = default;  // undefined
  Value(std::nullptr_t) : data_(nullptr) {}
  Value(bool b) : data_(b) {}
  Value(int64_t i) : data_(i) {}
  Value(int i) : data_(static_cast<int64_t>(i)) {}
  Value(std::size_t i) : data_(static_cast<int64_t>(i)) {}
  Value(double d) : data_(d) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(Array a) : data_(std::make_shared<Array>(std::move(a))) {}
  Value(std::shared_ptr<Object> o) : data_(std::move(o)) {}
  Value(Function f) : data_(std::make_shared<Function>(std::move(f))) {}

  static Value from_json(const nlohmann::json& json);
  static Value from_json(const nlohmann::ordered_json& json);

  bool is_undefined() const { return std::holds_alternative<Undefined>(data_); }
  bool is_none() const { return std::holds_alternative<std::nullptr_t>(data_); }
  bool is_bool() const { return std::holds_alternative<bool>(data_); }
  bool is_int() const { return std::holds_alternative<int64_t>(data_); }
  bool is_float() const { return std::holds_alternative<double>(data_); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(data_); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<Array>>(data_); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(data_); }
  bool is_callable() const { return std::holds_alternative<std::shared_ptr<Function>>(data_); }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }
  double as_number() const {
    return is_int() ? static_cast<double>(as_int()) : std::get<double>(data_);
  }
  const std::string& as_string() const { return std::get<std::string>(data_); }
  Array& as_array() const { return *std::get<std::shared_ptr<Array>>(data_); }
  Object& as_object() const { return *std::get<std::shared_ptr<Object>>(data_); }
  const Function& as_function() const { return *std::get<std::shared_ptr<Function>>(data_); }

  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python str(): what {{ value }} prints.
  std::string str() const;
  // Python repr(), used inside str() of lists and dicts.
  std::string repr() const;
  // json.dumps(value, ensure_ascii=False, indent=indent) (indent < 0: none).
  std::string to_json(int indent) const;
  // Name of the type for error messages.
  std::string_view type_name() const;

  bool operator==(const Value& other) const;

 private:
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string,
               std::shared_ptr<Array>, std::shared_ptr<Object>, std::shared_ptr<Function>>
      data_;
};

// A dict (insertion-ordered, like Python's) or a namespace() object.
struct Object {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

inline std::shared_ptr<Object> make_object() { return std::make_shared<Object>(); }

// Arguments of a call: positional, then keyword.
struct Arguments {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // Positional `index`, or keyword `name`, or undefined.
  Value get(std::size_t index, std::string_view name) const;
  // Keyword `name` only, or undefined.
  Value keyword_only(std::string_view name) const;
};

}  // namespace shardwise::tokenizer::jinja
