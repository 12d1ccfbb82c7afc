#include "bench/loadgen/load_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "bench/loadgen/arrivals.h"

namespace shardwise::loadgen {
namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

class Phase {
 public:
  Phase(Client& client, const std::function<RequestSpec(int64_t)>& make_request,
        const LoadOptions& options, Clock::time_point zero)
      : client_(client), make_request_(make_request), options_(options), zero_(zero) {}

  std::vector<RequestResult> run() {
    start_ = Clock::now();
    std::thread progress;
    if (options_.progress) progress = std::thread([this] { show_progress(); });
    if (options_.rate > 0) {
      open_loop();
    } else {
      closed_loop();
    }
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return done_ == sent_; });
      finished_ = true;
    }
    progress_wake_.notify_all();
    if (progress.joinable()) progress.join();
    std::sort(results_.begin(), results_.end(),
              [](const RequestResult& a, const RequestResult& b) { return a.index < b.index; });
    return std::move(results_);
  }

 private:
  bool may_send_locked() const {
    return (options_.requests == 0 || sent_ < options_.requests) &&
           (options_.duration_s == 0 ||
            seconds_between(start_, Clock::now()) < options_.duration_s);
  }

  void launch(int64_t index, double scheduled_s) {
    client_.start(make_request_(index), [this, scheduled_s](RequestResult&& result) {
      result.scheduled_s = scheduled_s;
      on_done(std::move(result));
    });
  }

  void on_done(RequestResult&& result) {
    int64_t next = -1;
    {
      std::lock_guard lock(mutex_);
      output_tokens_ += result.output_tokens;
      errors_ += result.ok() ? 0 : 1;
      results_.push_back(std::move(result));
      ++done_;
      // Decided under the lock that counted this one: once done_ == sent_ is seen, no
      // completion can send again.
      if (options_.rate == 0 && may_send_locked()) next = sent_++;
      changed_.notify_all();
    }
    if (next >= 0) launch(next, -1);
  }

  void closed_loop() {
    for (int i = 0; i < options_.concurrency; ++i) {
      int64_t index = 0;
      {
        std::lock_guard lock(mutex_);
        if (!may_send_locked()) return;
        index = sent_++;
      }
      launch(index, -1);
    }
  }

  void open_loop() {
    ArrivalGaps gaps(options_.rate, options_.burstiness, options_.seed);
    double t = 0;  // the first request goes at once
    while (true) {
      const Clock::time_point due =
          start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t));
      std::this_thread::sleep_until(due);
      int64_t index = 0;
      {
        std::unique_lock lock(mutex_);
        if (options_.concurrency > 0) {
          changed_.wait(lock, [&] { return sent_ - done_ < options_.concurrency; });
        }
        if (!may_send_locked()) return;
        index = sent_++;
      }
      launch(index, seconds_between(zero_, due));
      t += gaps.next();
    }
  }

  void show_progress() {
    std::unique_lock lock(mutex_);
    while (true) {
      const bool last =
          progress_wake_.wait_for(lock, std::chrono::milliseconds(500), [&] { return finished_; });
      const double elapsed = seconds_between(start_, Clock::now());
      const std::string target =
          options_.requests > 0 ? fmt::format("/{}", options_.requests) : std::string();
      std::fprintf(stderr, "\r%s: %lld%s done, %lld in flight, %lld errors, %.0f output tok/s   %s",
                   options_.name.c_str(), static_cast<long long>(done_), target.c_str(),
                   static_cast<long long>(sent_ - done_), static_cast<long long>(errors_),
                   elapsed > 0 ? static_cast<double>(output_tokens_) / elapsed : 0.0,
                   last ? "\n" : "");
      std::fflush(stderr);
      if (last) return;
    }
  }

  Client& client_;
  const std::function<RequestSpec(int64_t)>& make_request_;
  const LoadOptions& options_;
  const Clock::time_point zero_;
  Clock::time_point start_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::condition_variable progress_wake_;                         // every 500 ms, and at the end
  int64_t sent_ = 0, done_ = 0, errors_ = 0, output_tokens_ = 0;  // guarded by mutex_
  bool finished_ = false;                                         // guarded by mutex_
  std::vector<RequestResult> results_;                            // guarded by mutex_
};

}  // namespace

Status check_load_options(const LoadOptions& o) {
  if (o.requests < 0 || o.duration_s < 0) {
    return invalid_argument("--requests and --duration must not be negative");
  }
  if (o.requests == 0 && o.duration_s == 0) {
    return invalid_argument("give --requests N, --duration SECONDS, or both");
  }
  if (o.rate < 0) return invalid_argument("--rate must not be negative, got {}", o.rate);
  if (o.rate == 0 && o.concurrency < 1) {
    return invalid_argument("--concurrency must be at least 1, got {}", o.concurrency);
  }
  if (o.concurrency < 0) return invalid_argument("--concurrency must not be negative");
  if (!(o.burstiness > 0)) {
    return invalid_argument("--burstiness must be positive, got {}", o.burstiness);
  }
  return ok_status();
}

std::vector<RequestResult> run_phase(Client& client,
                                     const std::function<RequestSpec(int64_t)>& make_request,
                                     const LoadOptions& options, Clock::time_point zero) {
  return Phase(client, make_request, options, zero).run();
}

}  // namespace shardwise::loadgen
