#include "coordinator/registry.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "common/logging.h"
#include "common/secret.h"
#include "coordinator/model_card.h"

namespace shardwise {
namespace {

using Clock = std::chrono::steady_clock;

int64_t to_ns(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

Clock::time_point from_ns(int64_t ns) { return Clock::time_point(std::chrono::nanoseconds(ns)); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A card from before Device (or a client that left it unset) runs on the CPU.
v1::Device device_of(const v1::ModelCard& card) {
  return card.device() == v1::DEVICE_CUDA ? v1::DEVICE_CUDA : v1::DEVICE_CPU;
}

// The replica out of rotation longest, or null.
std::shared_ptr<Replica> oldest_dead(const std::vector<std::shared_ptr<Replica>>& list) {
  std::shared_ptr<Replica> oldest;
  for (const auto& r : list) {
    if (!r->live && (!oldest || r->left_rotation < oldest->left_rotation)) oldest = r;
  }
  return oldest;
}

}  // namespace

std::string device_name(v1::Device device) { return device == v1::DEVICE_CUDA ? "cuda" : "cpu"; }

Replica::~Replica() { close_session(); }

std::shared_ptr<ReplicaSession> Replica::session() {
  std::lock_guard lock(session_mutex_);
  if (!session_ || session_->broken())
    session_ = ReplicaSession::open(*stub, id, {dialer.get(), last_seen});
  return session_;
}

void Replica::close_session() {
  std::lock_guard lock(session_mutex_);
  if (session_) session_->close();
}

void Replica::end_session() {
  std::lock_guard lock(session_mutex_);
  if (session_) session_->close();
  session_.reset();
}

v1::EngineMetrics Replica::engine_metrics() const {
  std::lock_guard lock(engine_metrics_mutex_);
  return engine_metrics_;
}

void Replica::set_engine_metrics(const v1::EngineMetrics& metrics) {
  std::lock_guard lock(engine_metrics_mutex_);
  engine_metrics_ = metrics;
}

bool Replica::leave_rotation() {
  if (!live.exchange(false)) return false;
  left_rotation = to_ns(Clock::now());
  return true;
}

// What a registration needs done: the replicas it replaces or evicts.
struct Registry::Admission {
  std::vector<std::shared_ptr<Replica>> remove;
};

Registry::Registry(RegistryOptions options, std::shared_ptr<const ShardDialer> dialer)
    : options_(std::move(options)),
      dialer_(dialer ? std::move(dialer) : std::make_shared<const ShardDialer>()),
      started_(Clock::now()) {}

namespace {

RegistryOptions with_heartbeats(std::chrono::milliseconds interval, int missed,
                                RouterOptions router) {
  RegistryOptions options;
  options.heartbeat_interval = interval;
  options.missed_heartbeats = missed;
  options.router = router;
  return options;
}

}  // namespace

Registry::Registry(std::chrono::milliseconds heartbeat_interval, int missed_heartbeats,
                   RouterOptions router)
    : Registry(with_heartbeats(heartbeat_interval, missed_heartbeats, router)) {}

Registry::~Registry() {
  for (const auto& replica : replicas()) replica->end_session();
  constexpr std::chrono::seconds kSessionsEnd{10};
  if (!ReplicaSession::wait_until_none_left(kSessionsEnd)) {
    log()->warn("replica streams still open {} s after they were closed", kSessionsEnd.count());
  }
}

void Registry::expect_models(const std::vector<std::string>& models) {
  std::lock_guard lock(mutex_);
  for (const std::string& model : models) {
    ModelEntry& entry = by_model_[model];
    entry.expected = true;
    if (entry.created == 0) entry.created = unix_now();
  }
}

Status Registry::admit_locked(const v1::ModelCard& card, const std::string& digest,
                              bool proven_listener, Admission& admission) const {
  admission = {};
  auto removing = [&](const std::shared_ptr<Replica>& r) {
    return std::find(admission.remove.begin(), admission.remove.end(), r) != admission.remove.end();
  };
  // A restarted leader replaces its old self at the same address, wherever it was; a live one
  // only when the caller is that process, or proved it is the process listening there now.
  std::vector<std::shared_ptr<Replica>> all;
  for (const auto& [name, entry] : by_model_) {
    for (const auto& r : entry.replicas) {
      all.push_back(r);
      if (r->card.address() != card.address()) continue;
      const bool same_process = !card.instance_secret().empty() &&
                                constant_time_equal(card.instance_secret(), r->instance_secret);
      if (r->live && !same_process && !proven_listener) {
        return already_exists(
            "replica {} of {} is live at {}, and the caller is not the process listening there",
            r->id, name, card.address());
      }
      admission.remove.push_back(r);
    }
  }
  std::vector<std::shared_ptr<Replica>> siblings;  // the model's replicas that stay
  if (auto it = by_model_.find(card.name()); it != by_model_.end()) {
    for (const auto& r : it->second.replicas) {
      if (removing(r)) continue;
      siblings.push_back(r);
      if (r->live) SW_RETURN_IF_ERROR(check_same_model(card, digest, *r));
    }
  }
  // Room: replicas out of rotation give way, oldest first.
  auto make_room = [&](const std::vector<std::shared_ptr<Replica>>& list, int limit) {
    std::vector<std::shared_ptr<Replica>> staying;
    for (const auto& r : list) {
      if (!removing(r)) staying.push_back(r);
    }
    if (staying.size() < static_cast<size_t>(limit)) return true;
    std::shared_ptr<Replica> victim = oldest_dead(staying);
    if (victim) admission.remove.push_back(victim);
    return victim != nullptr;
  };
  if (!make_room(siblings, options_.limits.max_replicas_per_model)) {
    return resource_exhausted("model {} has {} live replicas, the most the registry holds",
                              card.name(), siblings.size());
  }
  if (!make_room(all, options_.limits.max_replicas)) {
    return resource_exhausted("the registry holds {} live replicas, its limit", all.size());
  }
  // Models count while one of their replicas is live (or --models names them).
  const bool serves_model =
      std::any_of(siblings.begin(), siblings.end(), [](const auto& r) { return r->live.load(); });
  auto own = by_model_.find(card.name());
  if (!serves_model && !(own != by_model_.end() && own->second.expected)) {
    size_t models = 0;
    for (const auto& [name, entry] : by_model_) {
      models +=
          entry.expected || std::any_of(entry.replicas.begin(), entry.replicas.end(),
                                        [&](const auto& r) { return r->live && !removing(r); });
    }
    if (models >= static_cast<size_t>(options_.limits.max_models)) {
      return resource_exhausted("the registry serves {} models, its limit", models);
    }
  }
  return ok_status();
}

StatusOr<std::shared_ptr<const Tokenizer>> Registry::shared_tokenizer(const v1::ModelCard& card,
                                                                      const std::string& digest) {
  {
    std::lock_guard lock(mutex_);
    auto it = tokenizers_.find(digest);
    if (it != tokenizers_.end()) {
      if (auto tokenizer = it->second.lock()) return tokenizer;
    }
  }
  auto parsed = Tokenizer::from_json(card.tokenizer_json(), card.tokenizer_config_json(),
                                     card.generation_config_json());
  if (!parsed.ok()) return parsed.status().with_context("model card " + card.name());
  std::shared_ptr<const Tokenizer> tokenizer = std::move(parsed).value();
  std::lock_guard lock(mutex_);
  std::weak_ptr<const Tokenizer>& slot = tokenizers_[digest];
  if (auto other = slot.lock()) return other;  // parsed meanwhile by another registration
  slot = tokenizer;
  return tokenizer;
}

StatusOr<Registration> Registry::register_replica(const v1::ModelCard& card) {
  SW_RETURN_IF_ERROR(validate_model_card(card, options_.limits));
  const std::string digest = tokenizer_digest(card);
  Admission admission;
  Status admitted;
  {
    std::lock_guard lock(mutex_);
    admitted = admit_locked(card, digest, /*proven_listener=*/false, admission);
  }
  bool proven = false;
  if (admitted.code() == StatusCode::kAlreadyExists) {
    // Outside the lock: ask whoever listens at the address whether it is the caller.
    if (card.instance_secret().empty()) return admitted;
    StatusOr<std::string> listener = dialer_->identify(card.address());
    if (!listener.ok()) {
      return unavailable("{}; cannot ask the process at {} who it is: {}", admitted.message(),
                         card.address(), listener.status().message());
    }
    if (!constant_time_equal(*listener, sha256_hex(card.instance_secret()))) return admitted;
    proven = true;
  } else if (!admitted.ok()) {
    return admitted;
  }
  SW_ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tokenizer, shared_tokenizer(card, digest));

  auto replica = std::make_shared<Replica>();
  replica->card = without_payloads(card);
  replica->tokenizer_digest = digest;
  replica->tokenizer = std::move(tokenizer);
  replica->stub = dialer_->stub(card.address());
  replica->dialer = dialer_;
  replica->instance_secret = card.instance_secret();
  replica->registration_secret = random_hex(32);
  replica->id = card.name() + "-" + random_hex(8);
  *replica->last_seen = to_ns(Clock::now());

  std::lock_guard lock(mutex_);
  // Again, under the lock that inserts: the registry may have changed while it was released.
  SW_RETURN_IF_ERROR(admit_locked(card, digest, proven, admission));
  for (const auto& r : admission.remove) {
    r->leave_rotation();
    r->close_session();
    remove_locked(r);
  }
  ModelEntry& entry = by_model_[card.name()];
  entry.replicas.push_back(replica);
  if (entry.created == 0) entry.created = unix_now();
  by_id_[replica->id] = replica;
  log()->info("replica {} of {} registered: {} {} tp={} capacity={}", replica->id, card.name(),
              card.address(), device_name(card.device()), card.tp(), card.capacity());
  return Registration{replica->id, replica->registration_secret};
}

void Registry::remove_locked(const std::shared_ptr<Replica>& replica) {
  by_id_.erase(replica->id);
  for (auto& [name, entry] : by_model_) std::erase(entry.replicas, replica);
}

Status Registry::heartbeat(const v1::HeartbeatRequest& beat) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(beat.replica_id());
  if (it == by_id_.end()) return not_found("unknown replica {}: register again", beat.replica_id());
  Replica& r = *it->second;
  if (!constant_time_equal(beat.registration_secret(), r.registration_secret)) {
    return permission_denied("replica {}: wrong registration secret", r.id);
  }
  if (!r.live) return not_found("replica {} is out of rotation: register again", r.id);
  *r.last_seen = to_ns(Clock::now());
  r.running = beat.running();
  r.waiting = beat.waiting();
  r.kv_cache_usage = beat.kv_cache_usage();
  r.set_engine_metrics(beat.engine());
  return ok_status();
}

Status Registry::deregister(const std::string& replica_id, const std::string& secret) {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(replica_id);
  if (it == by_id_.end()) return not_found("unknown replica {}", replica_id);
  Replica& r = *it->second;
  if (!constant_time_equal(secret, r.registration_secret)) {
    return permission_denied("replica {}: wrong registration secret", r.id);
  }
  if (r.leave_rotation()) {
    log()->info("replica {} ({}) deregistered: out of rotation, {} streams finishing", r.id,
                r.card.address(), r.outstanding.load());
  }
  return ok_status();
}

void Registry::expire(Clock::time_point now) {
  const auto silence = options_.heartbeat_interval * options_.missed_heartbeats;
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Replica>> freed;
  for (auto& [name, entry] : by_model_) {
    for (auto& r : entry.replicas) {
      if (r->live && now - from_ns(*r->last_seen) > silence && r->leave_rotation()) {
        log()->warn("replica {} ({}) missed {} heartbeats: out of rotation", r->id,
                    r->card.address(), options_.missed_heartbeats);
        r->close_session();
      }
      if (!r->live && now - from_ns(r->left_rotation) > options_.grace) freed.push_back(r);
    }
  }
  for (const auto& r : freed) {
    log()->info("replica {} ({}) freed: out of rotation for over {} s", r->id, r->card.address(),
                options_.grace.count() / 1000.0);
    remove_locked(r);
  }
  std::erase_if(by_model_, [](const auto& entry) {
    return !entry.second.expected && entry.second.replicas.empty();
  });
  std::erase_if(tokenizers_, [](const auto& entry) { return entry.second.expired(); });
}

void Registry::mark_dead(Replica& replica, const std::string& why) {
  if (replica.leave_rotation()) {
    log()->warn("replica {} ({}) out of rotation: {}", replica.id, replica.card.address(), why);
    replica.close_session();
  }
}

Status Registry::unknown_model(const std::string& model) const {
  if (Clock::now() - started_ < options_.registration_window) {
    return unavailable(
        "model '{}' has not registered yet: this coordinator started recently and its replicas "
        "are registering again; retry shortly",
        model);
  }
  return not_found("model '{}' is not served here", model);
}

std::chrono::seconds Registry::retry_after() const {
  const auto left = options_.registration_window - (Clock::now() - started_);
  return std::max(std::chrono::seconds(1), std::chrono::ceil<std::chrono::seconds>(left));
}

StatusOr<std::shared_ptr<Replica>> Registry::pick(const std::string& model, v1::Priority priority,
                                                  const std::set<std::string>& exclude,
                                                  const std::string& preferred_id) const {
  std::lock_guard lock(mutex_);
  auto it = by_model_.find(model);
  if (it == by_model_.end()) return unknown_model(model);
  const v1::Device preferred = priority == v1::PRIORITY_BATCH ? v1::DEVICE_CPU : v1::DEVICE_CUDA;
  std::shared_ptr<Replica> best;
  // Rank: preferred and unsaturated first, then fewest outstanding requests.
  auto rank = [&](const Replica& r) {
    const bool saturated = r.outstanding >= std::max(1, r.card.capacity());
    const bool first =
        !options_.router.route_by_priority || (device_of(r.card) == preferred && !saturated);
    return std::pair(first ? 0 : 1, r.outstanding.load());
  };
  int capacity = 0, outstanding = 0;
  // Ties go round robin: each pick starts scanning one replica further along.
  const std::vector<std::shared_ptr<Replica>>& list = it->second.replicas;
  const size_t start = next_pick_++;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::shared_ptr<Replica>& r = list[(start + i) % list.size()];
    if (!r->live || exclude.count(r->id)) continue;
    capacity += std::max(1, r->card.capacity());
    outstanding += r->outstanding;
    if (!best || rank(*r) < rank(*best)) best = r;
  }
  for (const std::shared_ptr<Replica>& r : list) {
    if (!preferred_id.empty() && r->id == preferred_id && r->live && !exclude.count(r->id))
      best = r;
  }
  if (!best) return unavailable("model '{}' has no live replica", model);
  if (outstanding >= capacity + options_.router.max_queued) {
    return resource_exhausted("model '{}' is at capacity ({} requests outstanding)", model,
                              outstanding);
  }
  return best;
}

const Replica* Registry::representative_locked(const std::string& model) const {
  auto it = by_model_.find(model);
  if (it == by_model_.end() || it->second.replicas.empty()) return nullptr;
  for (const auto& r : it->second.replicas) {
    if (r->live) return r.get();
  }
  return it->second.replicas.back().get();
}

StatusOr<std::shared_ptr<const Tokenizer>> Registry::tokenizer(const std::string& model) const {
  std::lock_guard lock(mutex_);
  const Replica* r = representative_locked(model);
  if (!r) return unknown_model(model);
  return r->tokenizer;
}

int Registry::context_length(const std::string& model) const {
  std::lock_guard lock(mutex_);
  const Replica* r = representative_locked(model);
  return r ? r->card.context_length() : 0;
}

int64_t Registry::created(const std::string& model) const {
  std::lock_guard lock(mutex_);
  auto it = by_model_.find(model);
  return it == by_model_.end() ? 0 : it->second.created;
}

std::vector<std::shared_ptr<Replica>> Registry::replicas() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<Replica>> all;
  for (const auto& [name, entry] : by_model_) {
    all.insert(all.end(), entry.replicas.begin(), entry.replicas.end());
  }
  return all;
}

std::vector<std::string> Registry::models() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, entry] : by_model_) names.push_back(name);
  return names;
}

bool Registry::serving() const {
  std::lock_guard lock(mutex_);
  if (by_model_.empty()) return false;
  return std::all_of(by_model_.begin(), by_model_.end(), [](const auto& entry) {
    return std::any_of(entry.second.replicas.begin(), entry.second.replicas.end(),
                       [](const auto& r) { return r->live.load(); });
  });
}

size_t Registry::tokenizers_held() const {
  std::lock_guard lock(mutex_);
  return std::count_if(tokenizers_.begin(), tokenizers_.end(),
                       [](const auto& entry) { return !entry.second.expired(); });
}

}  // namespace shardwise
