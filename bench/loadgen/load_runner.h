// Load shapes: a closed loop keeps `concurrency` requests in flight (each completion sends the
// next); an open loop sends at `rate` requests/s with gamma-distributed gaps (arrivals.h),
// however many are in flight (at most `concurrency` when it is > 0: a late request is sent
// when one finishes, and its delay shows as start_s - scheduled_s). Sending stops after
// `requests` requests or `duration_s` seconds, whichever comes first; the phase then waits for
// every request it sent, so each one ends in the results, finished or failed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bench/loadgen/client.h"

namespace shardwise::loadgen {

struct LoadOptions {
  int concurrency = 1;       // closed loop: requests in flight; open loop: their cap (0: none)
  double rate = 0;           // requests/s; 0: closed loop
  double burstiness = 1;     // gamma shape of the open loop's gaps (1: Poisson)
  int64_t requests = 0;      // stop sending after this many (0: no limit)
  double duration_s = 0;     // stop sending after this long (0: no limit)
  uint64_t seed = 0;         // of the arrival times
  bool progress = false;     // a live line on stderr
  std::string name = "run";  // shown in the progress line
};

Status check_load_options(const LoadOptions& options);

// Runs one phase (warm-up or measured) and returns every request's result, by index.
std::vector<RequestResult> run_phase(Client& client,
                                     const std::function<RequestSpec(int64_t)>& make_request,
                                     const LoadOptions& options, Clock::time_point zero);

}  // namespace shardwise::loadgen
