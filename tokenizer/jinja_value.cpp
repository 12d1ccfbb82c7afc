#include "tokenizer/jinja_value.h"

#include <cmath>

#include "tokenizer/jinja_limits.h"
#include "tokenizer/utf8.h"

namespace shardwise::tokenizer::jinja {
namespace {

template <typename Json>
Value convert(const Json& json, int depth) {
  if (depth > kMaxValueDepth) fail("JSON nested more than {} deep", kMaxValueDepth);
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return Value(nullptr);
    case nlohmann::json::value_t::boolean:
      return Value(json.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(json.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto value = json.template get<uint64_t>();
      if (value > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(value));
      return Value(static_cast<int64_t>(value));
    }
    case nlohmann::json::value_t::number_float:
      return Value(json.template get<double>());
    case nlohmann::json::value_t::string:
      return Value(json.template get<std::string>());
    case nlohmann::json::value_t::array: {
      Array array;
      for (const auto& item : json) array.push_back(convert(item, depth + 1));
      return Value(std::move(array));
    }
    case nlohmann::json::value_t::object: {
      auto object = make_object();
      for (const auto& [key, item] : json.items()) {
        object->items.emplace_back(key, convert(item, depth + 1));
      }
      return Value(object);
    }
    default:
      return Value();
  }
}

// Python's repr of a float: shortest round-trip digits, always with a '.' or exponent.
std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  std::string text = fmt::format("{}", d);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

// Python's repr of a str: single quotes unless the text has ' and no ".
std::string string_repr(const std::string& s) {
  const bool use_double = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char quote = use_double ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c == quote) {
          out += '\\';
          out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += quote;
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void to_json_impl(const Value& v, int indent, int depth, std::string& out) {
  check_string_size(out.size());
  const auto newline = [&](int level) {
    const std::size_t spaces = static_cast<std::size_t>(indent) * static_cast<std::size_t>(level);
    check_string_size(out.size() + spaces);
    out += '\n';
    out.append(spaces, ' ');
  };
  // json.dumps uses ", " and ": " without indent, "," and ": " (plus newlines) with it.
  const char* item_separator = indent >= 0 ? "," : ", ";
  if (v.is_array()) {
    const Array& array = v.as_array();
    if (array.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (std::size_t i = 0; i < array.size(); ++i) {
      if (i > 0) out += item_separator;
      if (indent >= 0) newline(depth + 1);
      to_json_impl(array[i], indent, depth + 1, out);
    }
    if (indent >= 0) newline(depth);
    out += ']';
  } else if (v.is_object()) {
    const Object& object = v.as_object();
    if (object.items.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    for (std::size_t i = 0; i < object.items.size(); ++i) {
      if (i > 0) out += item_separator;
      if (indent >= 0) newline(depth + 1);
      out += json_string(object.items[i].first);
      out += ": ";
      to_json_impl(object.items[i].second, indent, depth + 1, out);
    }
    if (indent >= 0) newline(depth);
    out += '}';
  } else if (v.is_string()) {
    check_string_size(out.size() + v.as_string().size());
    out += json_string(v.as_string());
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    const double d = v.as_number();
    out += std::isnan(d)   ? "NaN"
           : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity")
                           : float_repr(d);
  } else if (v.is_none() || v.is_undefined()) {
    out += "null";
  } else {
    fail("tojson: cannot serialize a {}", v.type_name());
  }
}

void append_repr(const Value& v, std::string& out);

void append_repr_of_items(const Value& v, std::string& out) {
  if (v.is_array()) {
    out += '[';
    const Array& array = v.as_array();
    for (std::size_t i = 0; i < array.size(); ++i) {
      if (i > 0) out += ", ";
      append_repr(array[i], out);
    }
    out += ']';
    return;
  }
  const Object& object = v.as_object();
  out += object.is_namespace ? "<Namespace {" : "{";
  for (std::size_t i = 0; i < object.items.size(); ++i) {
    if (i > 0) out += ", ";
    out += string_repr(object.items[i].first);
    out += ": ";
    append_repr(object.items[i].second, out);
  }
  out += object.is_namespace ? "}>" : "}";
}

void append_repr(const Value& v, std::string& out) {
  if (v.is_undefined()) return;
  if (v.is_none()) {
    out += "None";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "True" : "False";
  } else if (v.is_int()) {
    out += std::to_string(v.as_int());
  } else if (v.is_float()) {
    out += float_repr(v.as_number());
  } else if (v.is_string()) {
    check_string_size(out.size() + v.as_string().size());
    out += string_repr(v.as_string());
  } else if (v.is_array() || v.is_object()) {
    append_repr_of_items(v, out);
  } else {
    out += "<function>";
  }
  check_string_size(out.size());
}

void add_shape(const Value& v, int limit, int depth, ValueShape& shape) {
  ++shape.visited;
  if (!v.is_array() && !v.is_object()) return;
  shape.depth = std::max(shape.depth, depth + 1);
  if (v.is_object() && v.as_object().is_namespace) shape.holds_namespace = true;
  if (depth + 1 > limit) return;
  if (v.is_array()) {
    for (const Value& item : v.as_array()) add_shape(item, limit, depth + 1, shape);
  } else {
    for (const auto& [key, item] : v.as_object().items) add_shape(item, limit, depth + 1, shape);
  }
}

}  // namespace

DepthGuard::DepthGuard(int& depth, int limit, std::string_view what, int line) : depth_(depth) {
  if (depth_ >= limit) fail("line {}: {} more than {} deep", line, what, limit);
  ++depth_;
}

void check_string_size(std::size_t bytes) {
  if (bytes > kMaxStringBytes) fail("a string would pass the limit of {} bytes", kMaxStringBytes);
}

void check_list_size(std::size_t items) {
  if (items > kMaxListItems) fail("a list would pass the limit of {} items", kMaxListItems);
}

ValueShape shape_of(const Value& value, int limit) {
  ValueShape shape;
  add_shape(value, limit, 0, shape);
  return shape;
}

Value Value::from_json(const nlohmann::json& json) { return convert(json, 0); }
Value Value::from_json(const nlohmann::ordered_json& json) { return convert(json, 0); }

bool Value::truthy() const {
  if (is_undefined() || is_none()) return false;
  if (is_bool()) return as_bool();
  if (is_int()) return as_int() != 0;
  if (is_float()) return as_number() != 0.0;
  if (is_string()) return !as_string().empty();
  if (is_array()) return !as_array().empty();
  if (is_object()) return as_object().is_namespace || !as_object().items.empty();
  return true;
}

std::string Value::str() const {
  if (is_undefined()) return "";
  if (is_string()) return as_string();
  return repr();
}

std::string Value::repr() const {
  std::string out;
  append_repr(*this, out);
  return out;
}

std::string Value::to_json(int indent) const {
  std::string out;
  to_json_impl(*this, indent, 0, out);
  return out;
}

std::string_view Value::type_name() const {
  if (is_undefined()) return "undefined";
  if (is_none()) return "none";
  if (is_bool()) return "bool";
  if (is_int()) return "int";
  if (is_float()) return "float";
  if (is_string()) return "string";
  if (is_array()) return "list";
  if (is_object()) return as_object().is_namespace ? "namespace" : "dict";
  return "function";
}

bool Value::operator==(const Value& other) const {
  if (is_number() && other.is_number()) {
    if (is_int() && other.is_int()) return as_int() == other.as_int();
    return as_number() == other.as_number();
  }
  // Python: True == 1, but templates compare booleans with booleans.
  if (data_.index() != other.data_.index()) return false;
  if (is_undefined() || is_none()) return true;
  if (is_bool()) return as_bool() == other.as_bool();
  if (is_string()) return as_string() == other.as_string();
  if (is_array()) return as_array() == other.as_array();
  if (is_object()) {
    const auto& a = as_object().items;
    const auto& b = other.as_object().items;
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a) {
      const Value* found = other.as_object().find(key);
      if (found == nullptr || !(*found == value)) return false;
    }
    return true;
  }
  return false;
}

const Value* Object::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::set(const std::string& key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

Value Arguments::get(std::size_t index, std::string_view name) const {
  if (index < positional.size()) return positional[index];
  for (const auto& [key, value] : keyword) {
    if (key == name) return value;
  }
  return Value();
}

Value Arguments::keyword_only(std::string_view name) const {
  for (const auto& [key, value] : keyword) {
    if (key == name) return value;
  }
  return Value();
}

}  // namespace shardwise::tokenizer::jinja
