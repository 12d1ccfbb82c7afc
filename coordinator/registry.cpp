#include "coordinator/registry.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "common/logging.h"

namespace shardwise {
namespace {

// A card from before Device (or a client that left it unset) runs on the CPU.
v1::Device device_of(const v1::ModelCard& card) {
  return card.device() == v1::DEVICE_CUDA ? v1::DEVICE_CUDA : v1::DEVICE_CPU;
}

}  // namespace

std::string device_name(v1::Device device) { return device == v1::DEVICE_CUDA ? "cuda" : "cpu"; }

Replica::~Replica() { close_session(); }

std::shared_ptr<ReplicaSession> Replica::session() {
  std::lock_guard lock(session_mutex_);
  if (!session_ || session_->broken()) session_ = ReplicaSession::open(*stub, id);
  return session_;
}

void Replica::close_session() {
  std::lock_guard lock(session_mutex_);
  if (session_) session_->close();
}

Registry::Registry(std::chrono::milliseconds heartbeat_interval, int missed_heartbeats,
                   RouterOptions router)
    : heartbeat_interval_(heartbeat_interval),
      missed_heartbeats_(missed_heartbeats),
      router_(router) {}

void Registry::expect_models(const std::vector<std::string>& models) {
  std::lock_guard lock(mutex_);
  for (const std::string& model : models) by_model_[model];
}

StatusOr<std::string> Registry::register_replica(const v1::ModelCard& card) {
  if (card.name().empty() || card.address().empty()) {
    return invalid_argument("model card: name and address are required");
  }
  auto tokenizer = Tokenizer::from_json(card.tokenizer_json(), card.tokenizer_config_json(),
                                        card.generation_config_json());
  if (!tokenizer.ok()) return tokenizer.status().with_context("model card " + card.name());
  auto replica = std::make_shared<Replica>();
  replica->card = card;
  replica->card.clear_tokenizer_json();
  replica->card.clear_tokenizer_config_json();
  replica->card.clear_generation_config_json();
  replica->tokenizer = std::move(tokenizer).value();
  replica->stub =
      v1::Shard::NewStub(grpc::CreateChannel(card.address(), grpc::InsecureChannelCredentials()));
  replica->last_seen = std::chrono::steady_clock::now();

  std::lock_guard lock(mutex_);
  replica->id = card.name() + "-" + std::to_string(next_id_++);
  // A restarted leader at the same address replaces its old self, wherever it was.
  for (auto& [name, list] : by_model_) {
    std::erase_if(list, [&](const std::shared_ptr<Replica>& r) {
      if (r->card.address() != card.address()) return false;
      r->live = false;
      r->close_session();
      return true;
    });
  }
  by_model_[card.name()].push_back(replica);
  log()->info("replica {} of {} registered: {} {} tp={} capacity={}", replica->id, card.name(),
              card.address(), device_name(card.device()), card.tp(), card.capacity());
  return replica->id;
}

Status Registry::heartbeat(const v1::HeartbeatRequest& beat) {
  std::lock_guard lock(mutex_);
  for (auto& [name, list] : by_model_) {
    for (auto& r : list) {
      if (r->id != beat.replica_id()) continue;
      if (!r->live) return not_found("replica {} is out of rotation: register again", r->id);
      r->last_seen = std::chrono::steady_clock::now();
      r->running = beat.running();
      r->waiting = beat.waiting();
      r->kv_cache_usage = beat.kv_cache_usage();
      return ok_status();
    }
  }
  return not_found("unknown replica {}: register again", beat.replica_id());
}

Status Registry::deregister(const std::string& replica_id) {
  std::lock_guard lock(mutex_);
  for (auto& [name, list] : by_model_) {
    for (auto& r : list) {
      if (r->id != replica_id) continue;
      if (r->live.exchange(false)) {
        log()->info("replica {} ({}) deregistered: out of rotation, {} streams finishing", r->id,
                    r->card.address(), r->outstanding.load());
      }
      return ok_status();
    }
  }
  return not_found("unknown replica {}", replica_id);
}

void Registry::expire(std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (auto& [name, list] : by_model_) {
    for (auto& r : list) {
      if (r->live && now - r->last_seen > heartbeat_interval_ * missed_heartbeats_) {
        r->live = false;
        log()->warn("replica {} ({}) missed {} heartbeats: out of rotation", r->id,
                    r->card.address(), missed_heartbeats_);
        r->close_session();
      }
    }
  }
}

void Registry::mark_dead(Replica& replica, const std::string& why) {
  if (replica.live.exchange(false)) {
    log()->warn("replica {} ({}) out of rotation: {}", replica.id, replica.card.address(), why);
    replica.close_session();
  }
}

StatusOr<std::shared_ptr<Replica>> Registry::pick(const std::string& model, v1::Priority priority,
                                                  const std::set<std::string>& exclude) const {
  std::lock_guard lock(mutex_);
  auto it = by_model_.find(model);
  if (it == by_model_.end()) return not_found("model '{}' is not served here", model);
  const v1::Device preferred = priority == v1::PRIORITY_BATCH ? v1::DEVICE_CPU : v1::DEVICE_CUDA;
  std::shared_ptr<Replica> best;
  // Rank: preferred and unsaturated first, then fewest outstanding requests.
  auto rank = [&](const Replica& r) {
    const bool saturated = r.outstanding >= std::max(1, r.card.capacity());
    const bool first = !router_.route_by_priority || (device_of(r.card) == preferred && !saturated);
    return std::pair(first ? 0 : 1, r.outstanding.load());
  };
  int capacity = 0, outstanding = 0;
  // Ties go round robin: each pick starts scanning one replica further along.
  const std::vector<std::shared_ptr<Replica>>& list = it->second;
  const size_t start = next_pick_++;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::shared_ptr<Replica>& r = list[(start + i) % list.size()];
    if (!r->live || exclude.count(r->id)) continue;
    capacity += std::max(1, r->card.capacity());
    outstanding += r->outstanding;
    if (!best || rank(*r) < rank(*best)) best = r;
  }
  if (!best) return unavailable("model '{}' has no live replica", model);
  if (outstanding >= capacity + router_.max_queued) {
    return resource_exhausted("model '{}' is at capacity ({} requests outstanding)", model,
                              outstanding);
  }
  return best;
}

StatusOr<std::shared_ptr<const Tokenizer>> Registry::tokenizer(const std::string& model) const {
  std::lock_guard lock(mutex_);
  auto it = by_model_.find(model);
  if (it == by_model_.end() || it->second.empty()) {
    return not_found("model '{}' is not served here", model);
  }
  return it->second.back()->tokenizer;
}

int Registry::context_length(const std::string& model) const {
  std::lock_guard lock(mutex_);
  auto it = by_model_.find(model);
  return it == by_model_.end() || it->second.empty() ? 0 : it->second.back()->card.context_length();
}

std::vector<std::shared_ptr<Replica>> Registry::replicas() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Replica>> all;
  for (const auto& [name, list] : by_model_) all.insert(all.end(), list.begin(), list.end());
  return all;
}

std::vector<std::string> Registry::models() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, list] : by_model_) names.push_back(name);
  return names;
}

bool Registry::serving() const {
  std::lock_guard lock(mutex_);
  if (by_model_.empty()) return false;
  return std::all_of(by_model_.begin(), by_model_.end(), [](const auto& entry) {
    return std::any_of(entry.second.begin(), entry.second.end(),
                       [](const auto& r) { return r->live.load(); });
  });
}

}  // namespace shardwise
