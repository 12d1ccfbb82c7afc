#include "shard/device_runner.h"

#include <numeric>

namespace shardwise {

StatusOr<std::vector<float>> runner_prompt_logits(ModelRunner& runner,
                                                  const std::vector<int32_t>& prompt_ids) {
  if (prompt_ids.empty()) return invalid_argument("the prompt is empty");
  const int n = static_cast<int>(prompt_ids.size());
  const int n_blocks = kv_blocks_for_tokens(n, runner.block_size());
  if (n_blocks > runner.num_kv_blocks()) {
    return resource_exhausted("the prompt needs {} KV cache blocks, the cache has {}", n_blocks,
                              runner.num_kv_blocks());
  }
  ForwardBatch batch;
  batch.token_ids = prompt_ids;
  batch.positions.resize(n);
  std::iota(batch.positions.begin(), batch.positions.end(), 0);
  batch.seq_index.assign(n, 0);
  batch.slot_mapping = batch.positions;  // blocks 0, 1, 2, ... in order: slot = position
  batch.block_tables.resize(n_blocks);
  std::iota(batch.block_tables.begin(), batch.block_tables.end(), 0);
  batch.max_blocks_per_seq = n_blocks;
  batch.logit_rows = batch.positions;
  return runner.execute(batch);
}

}  // namespace shardwise
