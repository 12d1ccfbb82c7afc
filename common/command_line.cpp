#include "common/command_line.h"

#include <iostream>

namespace shardwise {
namespace {

// When the app has subcommands and none was recognised: "unknown command 'genrate'" (or, with
// nothing left over, "a command is required") and the commands there are.
bool explain_missing_command(const CLI::App& app) {
  const auto commands =
      app.get_subcommands([](const CLI::App* sub) { return !sub->get_disabled(); });
  if (commands.empty() || !app.get_subcommands().empty()) return false;
  const std::vector<std::string> rest = app.remaining();
  std::string first;
  for (const std::string& arg : rest) {
    if (!arg.starts_with("-")) {
      first = arg;
      break;
    }
  }
  if (first.empty() && !rest.empty()) {
    app.exit(CLI::ExtrasError(rest));  // unknown flags: name them, not the missing command
    return true;
  }
  std::cerr << app.get_name() << ": "
            << (first.empty() ? std::string("a command is required")
                              : "unknown command '" + first + "'")
            << "; the commands are:";
  for (const CLI::App* command : commands) std::cerr << " " << command->get_name();
  std::cerr << " (run with --help)\n";
  return true;
}

}  // namespace

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a subcommand failed and has said why
  } catch (const CLI::ParseError& e) {
    if (!explain_missing_command(app)) app.exit(e);
    return kExitUsage;
  } catch (const std::exception& e) {
    // A bug's exception still ends the program with a message, not an abort.
    std::cerr << app.get_name() << ": " << e.what() << "\n";
    return kExitRuntimeFailure;
  }
  return std::nullopt;
}

}  // namespace shardwise
