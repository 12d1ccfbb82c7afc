#include "bench/loadgen/prometheus.h"

#include <cctype>
#include <cstdlib>
#include <limits>
#include <string>

namespace shardwise::loadgen {
namespace {

bool is_name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return i;
}

// Reads NAME at i; returns the index past it (i itself when there is none).
size_t read_name(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size() && is_name_char(s[j], j == i)) ++j;
  return j;
}

// Parses {k="v",...} starting at s[i] == '{'; returns the index past '}', or npos.
size_t read_labels(std::string_view s, size_t i, std::map<std::string, std::string>& labels) {
  ++i;
  while (true) {
    i = skip_spaces(s, i);
    if (i < s.size() && s[i] == '}') return i + 1;
    const size_t end = read_name(s, i);
    if (end == i) return std::string_view::npos;
    std::string key(s.substr(i, end - i));
    i = skip_spaces(s, end);
    if (i + 1 >= s.size() || s[i] != '=' || s[i + 1] != '"') return std::string_view::npos;
    i += 2;
    std::string value;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\' && i + 1 < s.size()) {
        ++i;
        value += s[i] == 'n' ? '\n' : s[i];
      } else {
        value += s[i];
      }
      ++i;
    }
    if (i >= s.size()) return std::string_view::npos;
    labels[key] = std::move(value);
    i = skip_spaces(s, i + 1);
    if (i < s.size() && s[i] == ',') ++i;
  }
}

bool parse_value(std::string_view text, double& value) {
  if (text == "+Inf" || text == "Inf") {
    value = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    value = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    value = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  const std::string copy(text);
  char* end = nullptr;
  value = std::strtod(copy.c_str(), &end);
  return !copy.empty() && end == copy.c_str() + copy.size();
}

}  // namespace

StatusOr<Exposition> parse_exposition(std::string_view text) {
  Exposition out;
  int number = 0;
  while (!text.empty()) {
    ++number;
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t i = skip_spaces(line, 0);
    if (i == line.size()) continue;
    if (line[i] == '#') {
      // "# HELP name ..." and "# TYPE name kind" declare a family; other comments are free.
      const std::string_view rest = line.substr(skip_spaces(line, i + 1));
      for (std::string_view keyword : {"HELP ", "TYPE "}) {
        if (!rest.starts_with(keyword)) continue;
        const size_t start = skip_spaces(rest, keyword.size());
        const size_t end = read_name(rest, start);
        if (end > start) out.families.insert(std::string(rest.substr(start, end - start)));
      }
      continue;
    }
    MetricSample sample;
    const size_t end = read_name(line, i);
    if (end == i) return invalid_argument("/metrics line {}: no metric name", number);
    sample.name = std::string(line.substr(i, end - i));
    i = end;
    if (i < line.size() && line[i] == '{') {
      i = read_labels(line, i, sample.labels);
      if (i == std::string_view::npos) {
        return invalid_argument("/metrics line {}: malformed labels", number);
      }
    }
    i = skip_spaces(line, i);
    const size_t value_end = line.find_first_of(" \t", i);  // an optional timestamp follows
    if (!parse_value(line.substr(i, value_end - i), sample.value)) {
      return invalid_argument("/metrics line {}: malformed value", number);
    }
    out.samples.push_back(std::move(sample));
  }
  return out;
}

std::optional<double> sum_samples(const Exposition& exposition, const std::string& name,
                                  const std::string& label, const std::string& value) {
  bool seen = exposition.families.contains(name);
  double sum = 0;
  for (const MetricSample& s : exposition.samples) {
    if (s.name != name) continue;
    seen = true;
    auto it = label.empty() ? s.labels.end() : s.labels.find(label);
    if (it == s.labels.end() || it->second == value) sum += s.value;
  }
  if (!seen) return std::nullopt;
  return sum;
}

}  // namespace shardwise::loadgen
