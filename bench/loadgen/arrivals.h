// Open-loop arrival times: gaps drawn from a gamma distribution of shape `burstiness` and
// mean 1/rate. Burstiness 1 is a Poisson process (exponential gaps); below 1 the arrivals
// bunch up (the gaps' coefficient of variation is 1/sqrt(burstiness)), above 1 they even out.
// Seeded: the same seed gives the same gaps.
#pragma once

#include <cstdint>
#include <random>

namespace shardwise::loadgen {

class ArrivalGaps {
 public:
  // rate in requests per second (> 0), burstiness > 0.
  ArrivalGaps(double rate, double burstiness, uint64_t seed);

  // Seconds from the previous arrival to the next.
  double next();

 private:
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gamma_;
};

}  // namespace shardwise::loadgen
