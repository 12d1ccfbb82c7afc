#include "tests/support/test_support.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace shardwise::testing {

namespace {

// The environment variable `name` when set (test binaries carried to the GPU machine find the
// data there), else the path configured at build time.
std::filesystem::path configured_path(const char* name, const char* built_in) {
  const char* from_environment = std::getenv(name);
  return from_environment != nullptr && *from_environment != '\0' ? from_environment : built_in;
}

}  // namespace

std::filesystem::path testdata_dir() {
  std::filesystem::path dir = configured_path("SHARDWISE_TESTDATA_DIR", SHARDWISE_TESTDATA_DIR);
  if (!std::filesystem::is_directory(dir)) {
    throw std::runtime_error("test data folder " + dir.string() +
                             " is missing: clone the project beside shared/, configure with "
                             "-DSHARDWISE_TESTDATA_DIR=PATH, or set SHARDWISE_TESTDATA_DIR");
  }
  return dir;
}

std::filesystem::path default_model_dir() {
  return configured_path("SHARDWISE_SOURCE_DIR", SHARDWISE_SOURCE_DIR) /
         "assets/models/stories260K";
}

std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("shardwise-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

double relative_error(std::span<const float> actual, std::span<const float> expected) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double d = static_cast<double>(actual[i]) - expected[i];
    diff += d * d;
    norm += static_cast<double>(expected[i]) * expected[i];
  }
  if (norm == 0) return diff == 0 ? 0 : INFINITY;
  return std::sqrt(diff / norm);
}

::testing::AssertionResult close_by_relative_error(std::span<const float> actual,
                                                   std::span<const float> expected,
                                                   double tolerance) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "size " << actual.size() << " != expected size " << expected.size();
  }
  const double error = relative_error(actual, expected);
  if (error <= tolerance) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << "relative error " << error << " > tolerance " << tolerance
          << "; largest differences at:";
  // Print the first mismatches that are large against the typical element.
  int printed = 0;
  for (std::size_t i = 0; i < expected.size() && printed < 8; ++i) {
    const double d = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    if (d > tolerance * (std::fabs(expected[i]) + 1e-3)) {
      failure << " [" << i << "] " << actual[i] << " vs " << expected[i] << ";";
      ++printed;
    }
  }
  return failure;
}

}  // namespace shardwise::testing
