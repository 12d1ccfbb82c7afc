#include "shard/engine/scheduler.h"

#include <algorithm>
#include <optional>

#include "common/check.h"

namespace shardwise {
namespace {

int blocks_for(int n_tokens, int block_size) { return (n_tokens + block_size - 1) / block_size; }

}  // namespace

Scheduler::Scheduler(BlockManager& blocks, SchedulerOptions options)
    : blocks_(blocks), options_(options) {
  SW_CHECK(options_.max_batch_tokens > 0 && options_.max_num_seqs > 0);
}

bool Scheduler::grow_blocks(Sequence& seq, int n_tokens_in_cache) {
  const int needed = blocks_for(n_tokens_in_cache, blocks_.block_size()) -
                     static_cast<int>(seq.block_table.size());
  if (needed > blocks_.num_free_blocks()) return false;
  for (int i = 0; i < needed; ++i) seq.block_table.push_back(*blocks_.allocate());
  return true;
}

void Scheduler::free_blocks(Sequence& seq) {
  // Last block first: the tail of a sequence is the least likely to be shared, so it should
  // be evicted before the prefix.
  for (auto block = seq.block_table.rbegin(); block != seq.block_table.rend(); ++block) {
    blocks_.release(*block);
  }
  seq.block_table.clear();
  seq.block_hashes.clear();
  seq.num_computed_tokens = 0;
}

void Scheduler::preempt_newest(SchedulerOutput& plan) {
  Sequence* victim = running_.back();
  running_.pop_back();
  free_blocks(*victim);
  ++victim->num_preemptions;
  waiting_.push_front(victim);
  plan.preempted.push_back(victim);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput plan;
  int budget = options_.max_batch_tokens;
  for (std::size_t i = 0; i < running_.size() && budget > 0 &&
                          static_cast<int>(plan.chunks.size()) < options_.max_num_seqs;) {
    Sequence* seq = running_[i];
    const int n = std::min(seq->num_uncomputed(), budget);
    bool fits = grow_blocks(*seq, seq->num_computed_tokens + n);
    while (!fits && running_.back() != seq) {
      preempt_newest(plan);
      fits = grow_blocks(*seq, seq->num_computed_tokens + n);
    }
    if (!fits) {
      // Only `seq` itself is left to preempt; every older sequence keeps its blocks.
      preempt_newest(plan);
      break;
    }
    plan.chunks.push_back({seq, seq->num_computed_tokens, n, n == seq->num_uncomputed()});
    budget -= n;
    ++i;
  }
  // Admitting while others are being preempted would only evict them again.
  if (plan.preempted.empty()) admit_waiting(plan, budget);
  for (const auto& chunk : plan.chunks) plan.n_tokens += chunk.n_tokens;
  return plan;
}

void Scheduler::add_in_flight(const Sequence& seq, std::unordered_set<uint64_t>& in_flight) const {
  const int block_size = blocks_.block_size();
  const int full_blocks = static_cast<int>(seq.prompt.size()) / block_size;
  uint64_t parent = seq.block_hashes.empty() ? 0 : seq.block_hashes.back();
  for (int b = static_cast<int>(seq.block_hashes.size()); b < full_blocks; ++b) {
    parent = BlockManager::block_hash(
        parent, std::span<const int32_t>(seq.prompt).subspan(b * block_size, block_size));
    in_flight.insert(parent);
  }
}

void Scheduler::admit_waiting(SchedulerOutput& plan, int& budget) {
  const int block_size = blocks_.block_size();
  // Keys of the full prompt blocks running sequences are computing now (built at first need).
  std::optional<std::unordered_set<uint64_t>> in_flight;
  while (!waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) < options_.max_num_seqs &&
         static_cast<int>(plan.chunks.size()) < options_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    SW_CHECK(seq->block_table.empty() && seq->num_computed_tokens == 0);
    const std::vector<int32_t> tokens = seq->tokens(0, seq->length());
    // Leave at least the last token to compute: its logits are what the step is for.
    const int max_blocks = seq->needs_whole_prompt() ? 0 : (seq->length() - 1) / block_size;
    const auto match = blocks_.match_prefix(tokens, max_blocks);
    if (blocks_.prefix_caching() && static_cast<int>(match.blocks.size()) < max_blocks) {
      // The next block may be one another sequence is computing in this very pass (the choices
      // of one request, or requests sharing a prompt, arriving together): wait for it to enter
      // the cache instead of computing it again. Admission stops here, so the queue keeps its
      // order, and the wait ends when that prefill's chunk completes.
      if (!in_flight) {
        in_flight.emplace();
        for (const Sequence* running : running_) add_in_flight(*running, *in_flight);
      }
      const std::size_t next = match.blocks.size();
      const uint64_t key = BlockManager::block_hash(
          match.hashes.empty() ? 0 : match.hashes.back(),
          std::span<const int32_t>(tokens).subspan(next * block_size, block_size));
      if (in_flight->contains(key)) break;
    }
    const int cached_tokens = static_cast<int>(match.blocks.size()) * block_size;
    const int n = std::min(seq->length() - cached_tokens, budget);
    const int new_blocks =
        blocks_for(cached_tokens + n, block_size) - static_cast<int>(match.blocks.size());
    if (new_blocks + match.free_blocks > blocks_.num_free_blocks()) break;

    blocks_.acquire(match);
    seq->block_table = match.blocks;
    seq->block_hashes = match.hashes;
    seq->num_computed_tokens = cached_tokens;
    SW_CHECK(grow_blocks(*seq, cached_tokens + n));
    waiting_.pop_front();
    running_.push_back(seq);
    if (in_flight) add_in_flight(*seq, *in_flight);
    plan.chunks.push_back({seq, cached_tokens, n, n == seq->num_uncomputed()});
    budget -= n;
  }
}

void Scheduler::complete(const SchedulerOutput& plan) {
  for (const auto& chunk : plan.chunks) {
    SW_CHECK(chunk.seq->num_computed_tokens == chunk.first_position);
    chunk.seq->num_computed_tokens += chunk.n_tokens;
    commit_full_blocks(*chunk.seq);
  }
}

void Scheduler::commit_full_blocks(Sequence& seq) {
  if (!blocks_.prefix_caching()) return;
  const int block_size = blocks_.block_size();
  while (static_cast<int>(seq.block_hashes.size() + 1) * block_size <= seq.num_computed_tokens) {
    const int index = static_cast<int>(seq.block_hashes.size());
    const uint64_t parent = index == 0 ? 0 : seq.block_hashes.back();
    seq.block_hashes.push_back(
        blocks_.commit(seq.block_table[index], parent, seq.tokens(index * block_size, block_size)));
  }
}

void Scheduler::remove(Sequence* seq) {
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) {
    running_.erase(it);
  } else if (auto it = std::find(waiting_.begin(), waiting_.end(), seq); it != waiting_.end()) {
    waiting_.erase(it);
  }
  free_blocks(*seq);
}

}  // namespace shardwise
