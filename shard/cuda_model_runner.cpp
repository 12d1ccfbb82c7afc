#include "shard/cuda_model_runner.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "comm/agreement.h"
#include "comm/device_communicator_factory.h"
#include "comm/host_staged_communicator.h"
#include "common/check.h"
#include "common/logging.h"
#include "kernels/cuda/device.h"
#include "shard/device_runner.h"
#include "shard/tp_model_runner.h"

namespace shardwise {

StatusOr<std::unique_ptr<CudaModelRunner>> CudaModelRunner::make(CudaLlamaModel& model,
                                                                 int num_kv_blocks,
                                                                 int block_size) {
  SW_ASSIGN_OR_RETURN(CudaKvCache cache, model.make_kv_cache(num_kv_blocks, block_size));
  return std::make_unique<CudaModelRunner>(model, std::move(cache));
}

StatusOr<std::vector<int32_t>> CudaModelRunner::execute_and_sample(
    const ForwardBatch& batch, std::span<const RowSampling> rows) {
  std::vector<cuda::SamplingRow> device_rows(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    device_rows[i] = {rows[i].temperature, rows[i].top_k, rows[i].top_p,
                      rows[i].min_p,       rows[i].seed,  rows[i].offset};
  }
  return model_.forward_and_sample(batch, cache_, device_rows);
}

StatusOr<int> cuda_kv_blocks_for_budget(const CudaLlamaModel& model, int block_size,
                                        double kv_cache_gb, double fraction, int min_tokens) {
  // Activations, GEMM and attention workspaces, graphs: kept out of the automatic budget.
  constexpr double kReserveBytes = 1.5 * (1 << 30);
  constexpr double kGiB = 1 << 30;
  std::size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const double budget =
      kv_cache_gb > 0 ? kv_cache_gb * kGiB : std::max(0.0, fraction * free_bytes - kReserveBytes);
  const std::size_t block_bytes = model.kv_block_bytes(block_size);
  const long long blocks = static_cast<long long>(budget / block_bytes);
  const long long needed = (min_tokens + block_size - 1) / block_size;
  if (budget > free_bytes || blocks < needed) {
    return resource_exhausted(
        "the KV cache does not fit: weights take {:.2f} GiB, {:.2f} GiB of {:.2f} GiB are free, "
        "the cache budget is {:.2f} GiB ({} blocks of {:.2f} MiB) but {} tokens need {} blocks; "
        "lower --kv-cache-gb or the context, or raise --tp",
        model.weight_bytes() / kGiB, free_bytes / kGiB, total_bytes / kGiB, budget / kGiB, blocks,
        block_bytes / double(1 << 20), min_tokens, needed);
  }
  return static_cast<int>(std::min<long long>(blocks, 1 << 30));
}

// ---- make_cuda_replica ----------------------------------------------------------------------

namespace {

class CudaReplica final : public DeviceReplica {
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

StatusOr<std::unique_ptr<DeviceReplica>> make_cuda_replica(
    const std::filesystem::path& model_dir, const DeviceOptions& options, const MpiSession* session,
    Communicator* host_comm, int block_size, int num_kv_blocks, std::chrono::milliseconds timeout) {
  SW_ASSIGN_OR_RETURN(DType dtype, parse_dtype(options.dtype));
  auto replica = std::make_unique<CudaReplica>();
  replica->host_comm_ = host_comm;
  const bool grouped = session != nullptr && host_comm != nullptr && host_comm->size() > 1;
  SoloCommunicator solo;
  Communicator& group = grouped ? *host_comm : solo;  // the ranks that must agree
  if (session != nullptr) {
    // Collective: picks this rank's GPU; fails on every rank when any rank has none.
    SW_ASSIGN_OR_RETURN(replica->device_comm_, make_device_communicator(*session, timeout));
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
  return std::unique_ptr<DeviceReplica>(std::move(replica));
}

}  // namespace shardwise
