// Open-loop arrivals: the gamma gaps have the asked mean and spread, and the dispatcher sends
// at the asked rate (a fake client, no server); closed loops keep the asked concurrency and
// every request they send comes back in the results.
#include "bench/loadgen/arrivals.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "bench/loadgen/load_runner.h"

namespace shardwise::loadgen {
namespace {

struct Moments {
  double mean = 0, cv2 = 0;  // mean and squared coefficient of variation
};

Moments gap_moments(double rate, double burstiness, int n, uint64_t seed) {
  ArrivalGaps gaps(rate, burstiness, seed);
  std::vector<double> x(n);
  for (double& v : x) v = gaps.next();
  Moments m;
  for (double v : x) m.mean += v / n;
  double var = 0;
  for (double v : x) var += (v - m.mean) * (v - m.mean) / (n - 1);
  m.cv2 = var / (m.mean * m.mean);
  return m;
}

TEST(ArrivalGaps, PoissonMeanWithinFourSigma) {
  // Exponential gaps: the mean of n has standard deviation (1/rate) / sqrt(n).
  const double rate = 50;
  const int n = 400;
  for (uint64_t seed : {1, 2, 3}) {
    const Moments m = gap_moments(rate, 1.0, n, seed);
    EXPECT_NEAR(m.mean, 1 / rate, 4 / rate / std::sqrt(n)) << "seed " << seed;
  }
}

TEST(ArrivalGaps, BurstinessSetsTheSpread) {
  // Gamma of shape k: CV^2 = 1/k. 20,000 gaps put the sample CV^2 within a few percent.
  for (double k : {0.25, 1.0, 4.0}) {
    const Moments m = gap_moments(10, k, 20000, 7);
    EXPECT_NEAR(m.mean, 0.1, 0.1 * 4 * std::sqrt(1 / k / 20000)) << "k " << k;
    EXPECT_NEAR(m.cv2, 1 / k, 0.1 / k) << "k " << k;
  }
}

TEST(ArrivalGaps, SeededSequences) {
  ArrivalGaps a(5, 1, 42), b(5, 1, 42), c(5, 1, 43);
  bool differs = false;
  for (int i = 0; i < 10; ++i) {
    const double x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
}

// Completes each request on a thread of its own after `delay`, tracking how many are in
// flight at once.
class FakeClient final : public Client {
 public:
  FakeClient(Clock::time_point zero, std::chrono::microseconds delay) : zero_(zero), delay_(delay) {
    worker_ = std::thread([this] { work(); });
  }
  ~FakeClient() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    ready_.notify_all();
    worker_.join();
  }

  void start(const RequestSpec& spec, DoneFn done) override {
    auto recorder = std::make_shared<ResultRecorder>(spec, zero_);
    recorder->sent();
    const int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    std::lock_guard lock(mutex_);
    pending_.push_back({Clock::now() + delay_, recorder, std::move(done)});
    ready_.notify_all();
  }

  int max_in_flight() const { return max_in_flight_; }

 private:
  struct Pending {
    Clock::time_point due;
    std::shared_ptr<ResultRecorder> recorder;
    DoneFn done;
  };

  void work() {
    std::unique_lock lock(mutex_);
    while (true) {
      ready_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      if (pending_.empty()) return;
      Pending p = std::move(pending_.front());
      pending_.pop_front();
      lock.unlock();
      std::this_thread::sleep_until(p.due);
      p.recorder->received(1);
      RequestResult r = p.recorder->finish("length", -1, 1);
      --in_flight_;
      p.done(std::move(r));
      lock.lock();
    }
  }

  const Clock::time_point zero_;
  const std::chrono::microseconds delay_;
  std::atomic<int> in_flight_{0}, max_in_flight_{0};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Pending> pending_;
  bool stop_ = false;
  std::thread worker_;
};

RequestSpec spec_of(int64_t i) {
  RequestSpec s;
  s.index = i;
  s.prompt_ids = {1};
  return s;
}

void expect_every_index(const std::vector<RequestResult>& results, int64_t n) {
  ASSERT_EQ(static_cast<int64_t>(results.size()), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(results[i].index, i);
}

struct FakeRun {
  std::vector<RequestResult> results;
  int max_in_flight = 0;
};

// A phase against a FakeClient whose requests take `delay`.
FakeRun run_fake(std::chrono::microseconds delay, double rate, int concurrency, int64_t requests,
                 double duration_s = 0) {
  const Clock::time_point zero = Clock::now();
  FakeClient client(zero, delay);
  LoadOptions o;
  o.rate = rate;
  o.concurrency = concurrency;
  o.requests = requests;
  o.duration_s = duration_s;
  o.seed = 11;
  FakeRun run{run_phase(client, spec_of, o, zero)};
  run.max_in_flight = client.max_in_flight();
  return run;
}

TEST(LoadRunner, OpenLoopSendsAtTheAskedRate) {
  const FakeRun run = run_fake(std::chrono::microseconds(0), 200, 0, 300);
  expect_every_index(run.results, 300);
  std::vector<double> starts, late;
  for (const RequestResult& r : run.results) {
    starts.push_back(r.start_s);
    late.push_back(r.start_s - r.scheduled_s);
    EXPECT_GE(r.scheduled_s, 0);
  }
  std::sort(starts.begin(), starts.end());
  // 299 exponential gaps: their mean has a relative standard deviation of 1/sqrt(299).
  const double measured = 299 / (starts.back() - starts.front());
  EXPECT_NEAR(measured, 200, 200 * 4 / std::sqrt(299.0));
  std::sort(late.begin(), late.end());
  EXPECT_GE(late.front(), -1e-3) << "a request went before its time";
  // Loose: a loaded 2-core machine wakes sleepers late; lateness does not add up, since each
  // arrival is due at an absolute time.
  EXPECT_LT(late[late.size() / 2], 0.05) << "sends lag their schedule";
}

TEST(LoadRunner, OpenLoopCapHoldsConcurrency) {
  const FakeRun run = run_fake(std::chrono::milliseconds(5), 2000, 2, 30);
  expect_every_index(run.results, 30);
  EXPECT_LE(run.max_in_flight, 2);
}

TEST(LoadRunner, ClosedLoopKeepsConcurrency) {
  const FakeRun run = run_fake(std::chrono::milliseconds(1), 0, 4, 50);
  expect_every_index(run.results, 50);
  EXPECT_EQ(run.max_in_flight, 4);
}

TEST(LoadRunner, DurationStopsSendingAndWaitsForEveryRequest) {
  const std::vector<RequestResult> results =
      run_fake(std::chrono::milliseconds(10), 0, 2, 0, 0.2).results;
  // Two in flight, each 10 ms: about 2 x 0.2 s / 10 ms = 40 requests (fewer on a loaded
  // machine, never more), each one accounted for.
  ASSERT_GE(results.size(), 4u);
  ASSERT_LE(results.size(), 44u);
  expect_every_index(results, static_cast<int64_t>(results.size()));
  for (const RequestResult& r : results) EXPECT_LT(r.start_s, 0.2 + 0.5);
}

TEST(LoadRunner, RefusesImpossibleOptions) {
  LoadOptions o;
  EXPECT_FALSE(check_load_options(o).ok());  // neither requests nor duration
  o.requests = 10;
  EXPECT_TRUE(check_load_options(o).ok());
  o.concurrency = 0;
  EXPECT_FALSE(check_load_options(o).ok());
  o.rate = 5;
  EXPECT_TRUE(check_load_options(o).ok());  // open loop without a cap
  o.burstiness = 0;
  EXPECT_FALSE(check_load_options(o).ok());
  o.burstiness = 1;
  o.rate = -1;
  EXPECT_FALSE(check_load_options(o).ok());
}

}  // namespace
}  // namespace shardwise::loadgen
