#include "common/yaml_config.h"

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

// The file being read: CLI11 reads the --config option's value just before from_config.
std::string config_file(const CLI::App& app) {
  const CLI::Option* option = app.get_config_ptr();
  if (option == nullptr || option->results().empty()) return "the config file";
  return option->results().back();
}

// CLI11 looks a key up as a long name, then (one letter) a short one.
bool names_an_option(const CLI::App& app, const std::string& key) {
  return app.get_option_no_throw("--" + key) != nullptr ||
         (key.size() == 1 && app.get_option_no_throw("-" + key) != nullptr);
}

}  // namespace

std::vector<CLI::ConfigItem> YamlConfig::from_config(std::istream& input) const {
  YAML::Node root;
  try {
    root = YAML::Load(input);
  } catch (const YAML::Exception& e) {
    throw CLI::ConfigError(config_file(app_) + " is not valid YAML: " + std::string(e.what()));
  }
  std::vector<CLI::ConfigItem> items;
  if (root.IsNull()) return items;  // an empty file sets nothing
  if (!root.IsMap()) {
    throw CLI::ConfigError(config_file(app_) + ": expected a map of option: value");
  }
  try {
    flatten(root, "", items);
  } catch (const YAML::Exception& e) {  // a key that is no string ({[a]: 1}), for one
    throw CLI::ConfigError(config_file(app_) + ": " + std::string(e.what()));
  }
  for (const CLI::ConfigItem& item : items) {
    if (!names_an_option(app_, item.name)) {
      throw CLI::ConfigError("unknown key " + item.name + " in " + config_file(app_));
    }
  }
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

void add_yaml_config(CLI::App& app, bool& print_config) {
  app.config_formatter(std::make_shared<YamlConfig>(app));
  app.set_config("--config", "",
                 "YAML file of options: each key an option's long name (api_key or api-key; "
                 "nested maps join with '-', e.g. tls: {cert: F, key: F}); the command line "
                 "overrides it");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_flag("--print-config", print_config,
               "Print the effective options as a YAML --config file and exit")
      ->configurable(false);
}

}  // namespace shardwise
