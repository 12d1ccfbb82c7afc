#include "coordinator/yaml_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace shardwise {
namespace {

std::string option_name(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

void flatten(const YAML::Node& node, const std::string& prefix,
             std::vector<CLI::ConfigItem>& items) {
  for (const auto& entry : node) {
    const std::string name = prefix + option_name(entry.first.as<std::string>());
    const YAML::Node& value = entry.second;
    if (value.IsMap()) {
      flatten(value, name + "-", items);
      continue;
    }
    CLI::ConfigItem item;
    item.name = name;
    if (value.IsSequence()) {
      for (const auto& element : value) {
        if (!element.IsScalar()) {
          throw CLI::ConfigError("config key '" + name + "': expected a list of plain values");
        }
        item.inputs.push_back(element.as<std::string>());
      }
    } else if (value.IsScalar()) {
      item.inputs.push_back(value.as<std::string>());
    } else {
      throw CLI::ConfigError("config key '" + name + "' has no value");
    }
    items.push_back(std::move(item));
  }
}

}  // namespace

std::vector<CLI::ConfigItem> YamlConfig::from_config(std::istream& input) const {
  YAML::Node root;
  try {
    root = YAML::Load(input);
  } catch (const YAML::Exception& e) {
    throw CLI::ConfigError("config file is not valid YAML: " + std::string(e.what()));
  }
  std::vector<CLI::ConfigItem> items;
  if (root.IsNull()) return items;  // an empty file sets nothing
  if (!root.IsMap()) throw CLI::ConfigError("config file: expected a map of option: value");
  flatten(root, "", items);
  return items;
}

std::string YamlConfig::to_config(const CLI::App* app, bool default_also, bool, std::string) const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const CLI::Option* option : app->get_options()) {
    if (option->get_lnames().empty() || !option->get_configurable()) continue;
    std::vector<std::string> values = option->reduced_results();
    if (values.empty() && default_also) values = {option->get_default_str()};
    if (values.empty() || (values.size() == 1 && values[0].empty())) continue;
    out << YAML::Key << option->get_lnames().front() << YAML::Value;
    if (values.size() == 1) {
      out << values[0];
    } else {
      out << YAML::Flow << values;
    }
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace shardwise
