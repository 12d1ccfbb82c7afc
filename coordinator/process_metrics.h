// The standard process_* metrics of Prometheus clients, read from /proc and getrusage() at
// scrape time: CPU seconds, resident and virtual memory, open and maximum file descriptors,
// start time.
#pragma once

#include <string>

namespace shardwise {

// Appends the process_* families (HELP, TYPE and one sample each) to `out`. A value the
// system does not give (no /proc) is left out.
void render_process_metrics(std::string& out);

}  // namespace shardwise
