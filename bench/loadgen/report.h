// A run's outputs: one JSON document (config, summary, server counters, client CPU, and one
// row per request), one CSV line of its headline figures, and a short text summary.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/loadgen/request.h"
#include "common/status.h"

namespace shardwise::loadgen {

// {"index", "start_s", "ttft_s", "e2e_s", "tpot_s", "itl_s": [...], "input_tokens", ...};
// times rounded to the microsecond.
nlohmann::json result_row(const RequestResult& result);

std::string csv_header();
// From a report holding "config", "summary" and "server".
std::string csv_line(const nlohmann::json& report);
std::string text_summary(const nlohmann::json& report);

// Writes the JSON document to `json_path` and appends the CSV line to `csv_path` (with the
// header when the file is new); either path may be empty.
Status write_outputs(const nlohmann::json& report, const std::string& json_path,
                     const std::string& csv_path);

}  // namespace shardwise::loadgen
