// Jinja's built-in filters and tests, Python's str/dict methods, and the global functions
// chat templates call (range, namespace, dict, raise_exception, strftime_now).
#pragma once

#include <optional>
#include <string>

#include "tokenizer/jinja_value.h"

namespace shardwise::tokenizer::jinja {

// Unknown names fail with UNIMPLEMENTED naming the filter or test.
Value apply_filter(const std::string& name, const Value& input, Arguments& args);
bool apply_test(const std::string& name, const Value& input, Arguments& args);

// `value.name` for a method of str, dict or list (bound to `value`), if there is one.
std::optional<Value> bound_method(const Value& value, const std::string& name);

// The global functions, by name.
std::optional<Value> global_function(const std::string& name);

// Python semantics for the operators the evaluator delegates.
Value binary_operator(const std::string& op, const Value& left, const Value& right);
bool contains(const Value& container, const Value& item);
// Python's a < b for numbers, strings and lists.
bool less_than(const Value& a, const Value& b);
// The elements iterated by `for` (dicts give their keys, strings their characters).
Array iterate(const Value& value);
// value[index] for lists, dicts and strings (negative indexes count from the end).
Value subscript(const Value& value, const Value& index);
Value slice(const Value& value, const Value& start, const Value& stop, const Value& step);

}  // namespace shardwise::tokenizer::jinja
