#include "bench/loadgen/arrivals.h"

namespace shardwise::loadgen {

// Shape k and scale theta give mean k * theta = 1 / rate.
ArrivalGaps::ArrivalGaps(double rate, double burstiness, uint64_t seed)
    : rng_(seed), gamma_(burstiness, 1.0 / (rate * burstiness)) {}

double ArrivalGaps::next() { return gamma_(rng_); }

}  // namespace shardwise::loadgen
