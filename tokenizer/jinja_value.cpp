#include "tokenizer/jinja_value.h"

#include <cmath>

#include "tokenizer/utf8.h"

namespace shardwise::tokenizer::jinja {
namespace {

template <typename Json>
Value convert(const Json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return Value(nullptr);
    case nlohmann::json::value_t::boolean:
      return Value(json.template get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return Value(json.template get<int64_t>());
    case nlohmann::json::value_t::number_float:
      return Value(json.template get<double>());
    case nlohmann::json::value_t::string:
      return Value(json.template get<std::string>());
    case nlohmann::json::value_t::array: {
      Array array;
      for (const auto& item : json) array.push_back(convert(item));
      return Value(std::move(array));
    }
    case nlohmann::json::value_t::object: {
      auto object = make_object();
      for (const auto& [key, item] : json.items()) object->items.emplace_back(key, convert(item));
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
  const auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<std::size_t>(indent * level), ' ');
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

}  // namespace

Value Value::from_json(const nlohmann::json& json) { return convert(json); }
Value Value::from_json(const nlohmann::ordered_json& json) { return convert(json); }

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
  if (is_undefined()) return "";
  if (is_none()) return "None";
  if (is_bool()) return as_bool() ? "True" : "False";
  if (is_int()) return std::to_string(as_int());
  if (is_float()) return float_repr(as_number());
  if (is_string()) return string_repr(as_string());
  if (is_array()) {
    std::string out = "[";
    const Array& array = as_array();
    for (std::size_t i = 0; i < array.size(); ++i) {
      if (i > 0) out += ", ";
      out += array[i].repr();
    }
    return out + "]";
  }
  if (is_object()) {
    const Object& object = as_object();
    std::string out = object.is_namespace ? "<Namespace {" : "{";
    for (std::size_t i = 0; i < object.items.size(); ++i) {
      if (i > 0) out += ", ";
      out += string_repr(object.items[i].first) + ": " + object.items[i].second.repr();
    }
    return out + (object.is_namespace ? "}>" : "}");
  }
  return "<function>";
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
