#include "shard/runner/replica.h"

#include <unistd.h>

#include "comm/agreement.h"
#include "common/logging.h"
#include "models/cpu_model_options.h"
#include "shard/runner/tp_model_runner.h"

namespace shardwise {
namespace {

// The CPU path: this rank's slice of the weights in host memory, a paged KV cache beside it.
class CpuReplica final : public Replica {
 public:
  const LlamaConfig& config() const override { return model_->config(); }
  ModelRunner& runner() override {
    if (leader_) return *leader_;
    return *local_;
  }
  Status run_follower() override { return run_follower_loop(*local_, *comm_); }

  // Declared in construction order: the leader is destroyed first (releasing the followers).
  SoloCommunicator solo_;
  Communicator* comm_ = nullptr;
  std::unique_ptr<LlamaModel> model_;
  std::unique_ptr<LocalModelRunner> local_;
  std::unique_ptr<LeaderModelRunner> leader_;
};

// A cache larger than this host's memory would be killed by the kernel or swap: refuse it.
Status check_cpu_cache_fits(const LlamaModel& model, int num_kv_blocks, int block_size) {
  const LlamaConfig& c = model.config();
  const double element = model.options().kv_cache == KvCacheType::kBF16 ? 2 : 4;
  const double bytes = 2.0 * c.num_hidden_layers * num_kv_blocks * block_size *
                       model.attention_partition().local_kv_heads * c.head_dim * element;
  const double memory = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  if (bytes <= memory) return ok_status();
  return resource_exhausted(
      "the KV cache of {} blocks of {} tokens takes {:.2f} GiB, more than this host's {:.2f} GiB "
      "of memory; lower --num-kv-blocks (or --capacity)",
      num_kv_blocks, block_size, bytes / (1 << 30), memory / (1 << 30));
}

StatusOr<std::unique_ptr<Replica>> make_cpu_replica(const ReplicaOptions& options,
                                                    const ReplicaGroup& group) {
  auto replica = std::make_unique<CpuReplica>();
  replica->comm_ = group.comm != nullptr ? group.comm : &replica->solo_;
  Communicator& comm = *replica->comm_;
  CpuModelOptions model_options;
  model_options.weight_type = *parse_weight_dtype(options.device.weight_dtype);
  model_options.kv_cache = *parse_kv_cache_dtype(options.device.kv_cache_dtype);
  auto model = load_llama_model(options.model_dir, comm, model_options);
  if (!model.ok()) log()->error("{}", model.status().to_string());
  if (any_rank_failed(comm, !model.ok())) {
    return model.ok() ? internal_error("another rank failed to load the model") : model.status();
  }
  replica->model_ = std::move(model).value();
  const int window_blocks =
      kv_blocks_for_tokens(replica->model_->config().max_position_embeddings, options.block_size);
  const int num_kv_blocks = options.num_kv_blocks > 0
                                ? options.num_kv_blocks
                                : window_blocks * std::max(options.sequences, 1);
  const Status fits = check_cpu_cache_fits(*replica->model_, num_kv_blocks, options.block_size);
  if (any_rank_failed(comm, !fits.ok())) {
    return fits.ok() ? resource_exhausted("another rank's KV cache does not fit its host") : fits;
  }
  replica->local_ =
      std::make_unique<LocalModelRunner>(*replica->model_, num_kv_blocks, options.block_size);
  if (comm.size() > 1 && comm.rank() == 0) {
    replica->leader_ = std::make_unique<LeaderModelRunner>(*replica->local_, comm);
  }
  return std::unique_ptr<Replica>(std::move(replica));
}

}  // namespace

std::string_view device_name(Device device) {
  switch (device) {
    case Device::kCpu:
      return "cpu";
    case Device::kCuda:
      return "cuda";
  }
  return "unknown";
}

std::optional<Device> parse_device(std::string_view name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  return std::nullopt;
}

Status check_device_options(const DeviceOptions& options) {
  if (options.device != Device::kCuda && options.random_weights) {
    return invalid_argument("--random-weights needs --device cuda");
  }
  SW_RETURN_IF_ERROR(parse_weight_dtype(options.weight_dtype).status());
  SW_RETURN_IF_ERROR(parse_kv_cache_dtype(options.kv_cache_dtype).status());
  if (options.device == Device::kCuda &&
      (options.weight_dtype != "auto" || options.kv_cache_dtype != "f32")) {
    return invalid_argument(
        "--weight-dtype and --kv-cache-dtype are for --device cpu (use --dtype)");
  }
  return ok_status();
}

StatusOr<std::unique_ptr<Replica>> make_replica(const ReplicaOptions& options,
                                                const ReplicaGroup& group) {
  SW_RETURN_IF_ERROR(check_device_options(options.device));
  if (options.block_size < 1) {
    return invalid_argument("the KV cache block size must be >= 1, got {}", options.block_size);
  }
  switch (options.device.device) {
    case Device::kCpu:
      return make_cpu_replica(options, group);
    case Device::kCuda:
      return make_cuda_replica(options, group);
  }
  return invalid_argument("unknown device");
}

}  // namespace shardwise
