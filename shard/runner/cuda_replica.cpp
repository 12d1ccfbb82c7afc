// make_replica for Device::kCuda: picks this rank's GPU and device communicator, loads the
// model onto it and sizes the KV cache, every rank of the group agreeing on failure and size.
#include "comm/agreement.h"
#include "comm/device_communicator_factory.h"
#include "comm/host_staged_communicator.h"
#include "common/logging.h"
#include "kernels/cuda/device.h"
#include "shard/runner/cuda_model_runner.h"
#include "shard/runner/replica.h"
#include "shard/runner/tp_model_runner.h"

namespace shardwise {
namespace {

class CudaReplica final : public Replica {
 public:
  const LlamaConfig& config() const override { return model_->config(); }
  ModelRunner& runner() override {
    if (leader_) return *leader_;
    return *local_;
  }
  Status run_follower() override { return run_follower_loop(*local_, *host_comm_); }

  // Declared in construction order: destroyed leader first (releasing the followers).
  std::unique_ptr<DeviceCommunicator> device_comm_;
  std::unique_ptr<CudaLlamaModel> model_;
  std::unique_ptr<CudaModelRunner> local_;
  std::unique_ptr<LeaderModelRunner> leader_;
  Communicator* host_comm_ = nullptr;
};

StatusOr<DType> parse_dtype(const std::string& name) {
  if (name == "bf16") return DType::kBF16;
  if (name == "f32") return DType::kF32;
  return invalid_argument("--dtype {}: the CUDA model computes in bf16 or f32", name);
}

}  // namespace

StatusOr<std::unique_ptr<Replica>> make_cuda_replica(const ReplicaOptions& replica_options,
                                                     const ReplicaGroup& replica_group) {
  const DeviceOptions& options = replica_options.device;
  const std::filesystem::path& model_dir = replica_options.model_dir;
  const MpiSession* session = replica_group.session;
  Communicator* host_comm = replica_group.comm;
  const int block_size = replica_options.block_size;
  const int num_kv_blocks = replica_options.num_kv_blocks;
  SW_ASSIGN_OR_RETURN(DType dtype, parse_dtype(options.dtype));
  auto replica = std::make_unique<CudaReplica>();
  replica->host_comm_ = host_comm;
  const bool grouped = session != nullptr && host_comm != nullptr && host_comm->size() > 1;
  SoloCommunicator solo;
  Communicator& group = grouped ? *host_comm : solo;  // the ranks that must agree
  if (session != nullptr) {
    // Collective: picks this rank's GPU; fails on every rank when any rank has none.
    SW_ASSIGN_OR_RETURN(replica->device_comm_,
                        make_device_communicator(*session, replica_group.collective_timeout));
  } else {
    if (cuda::device_count() == 0) {
      return failed_precondition("--device cuda: no CUDA device (no GPU or no driver here)");
    }
    replica->device_comm_ = std::make_unique<SoloDeviceCommunicator>();
  }
  CudaModelOptions model_options;
  model_options.dtype = dtype;
  model_options.random_weights = options.random_weights;
  // Host-staged collectives synchronise the stream on the host: they cannot be captured.
  const bool host_staged =
      dynamic_cast<HostStagedCommunicator*>(replica->device_comm_.get()) != nullptr;
  model_options.cuda_graphs = options.cuda_graphs && !host_staged;

  auto model = load_cuda_llama_model(model_dir, *replica->device_comm_, model_options);
  if (!model.ok()) log()->error("{}", model.status().to_string());
  if (any_rank_failed(group, !model.ok())) {
    return model.ok() ? internal_error("another rank failed to load the model") : model.status();
  }
  replica->model_ = std::move(model).value();
  CudaLlamaModel& cuda_model = *replica->model_;
  log()->info("{} on the GPU: {:.2f} GiB of {} weights on this rank, CUDA graphs {}",
              model_dir.string(), cuda_model.weight_bytes() / double(1 << 30), options.dtype,
              model_options.cuda_graphs ? "on" : "off");

  StatusOr<int> blocks = num_kv_blocks;
  if (num_kv_blocks <= 0) {
    // Host-staged ranks share GPUs (all of them on a one-GPU machine) and measure the same free
    // memory before any of them allocates its cache: each may take only its share of it, or
    // every rank after the first fails to allocate.
    const int sharing = host_staged ? replica->device_comm_->size() : 1;
    blocks = cuda_kv_blocks_for_budget(cuda_model, block_size, options.kv_cache_gb,
                                       options.kv_cache_fraction / sharing, block_size);
  }
  if (!blocks.ok()) log()->error("{}", blocks.status().to_string());
  if (any_rank_failed(group, !blocks.ok())) {
    return blocks.ok() ? internal_error("another rank cannot fit its KV cache") : blocks.status();
  }
  const int agreed_blocks = group_min(group, *blocks);
  auto local = CudaModelRunner::make(cuda_model, agreed_blocks, block_size);
  if (!local.ok()) log()->error("{}", local.status().to_string());
  if (any_rank_failed(group, !local.ok())) {
    return local.ok() ? internal_error("another rank cannot allocate its KV cache")
                      : local.status();
  }
  replica->local_ = std::move(local).value();
  log()->info("KV cache: {} blocks of {} tokens ({:.2f} GiB)", agreed_blocks, block_size,
              agreed_blocks * double(cuda_model.kv_block_bytes(block_size)) / (1 << 30));
  if (grouped && host_comm->rank() == 0) {
    replica->leader_ = std::make_unique<LeaderModelRunner>(*replica->local_, *host_comm);
  }
  return std::unique_ptr<Replica>(std::move(replica));
}

}  // namespace shardwise
