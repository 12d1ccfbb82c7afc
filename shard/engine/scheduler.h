// The iteration-level scheduler (continuous batching). Each step it plans one forward pass
// under a token budget:
//   1. running sequences, oldest first, each gets its remaining tokens (one when decoding, a
//      chunk of its prompt when prefilling); when the cache cannot hold them the newest running
//      sequence is preempted (its blocks freed; it re-queues at the front and recomputes later);
//   2. then, if nothing was preempted, waiting sequences in arrival order are admitted while
//      blocks and budget last, starting after their longest cached prefix. A sequence whose
//      next prompt block is being computed by a running one waits (admission stops) until that
//      block is cached, so requests sharing a prompt prefill it once.
// It never reorders the waiting queue, so no request starves.
#pragma once

#include <deque>
#include <unordered_set>
#include <vector>

#include "shard/engine/block_manager.h"
#include "shard/engine/sequence.h"

namespace shardwise {

struct SchedulerOptions {
  int max_batch_tokens = 512;  // tokens per forward pass (decode tokens + prefill chunks)
  int max_num_seqs = 256;      // sequences per forward pass
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int first_position = 0;  // == seq->num_computed_tokens when planned
  int n_tokens = 0;
  bool samples = false;  // the chunk reaches the end of the sequence: sample a token after it
};

// One step's plan; the engine turns it into the ForwardBatch (which a TP leader's runner sends
// its followers as a StepPlan).
struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;  // one per sequence, running ones first
  std::vector<Sequence*> preempted;    // sequences preempted while planning
  int n_tokens = 0;
};

class Scheduler {
 public:
  Scheduler(BlockManager& blocks, SchedulerOptions options);

  void add(Sequence* seq) { waiting_.push_back(seq); }
  SchedulerOutput schedule();
  // After the plan's forward pass: its tokens are in the cache; full blocks enter the prefix
  // cache.
  void complete(const SchedulerOutput& plan);
  // Takes a finished or cancelled sequence out of the queues and frees its blocks.
  void remove(Sequence* seq);

  const std::deque<Sequence*>& waiting() const { return waiting_; }
  const std::vector<Sequence*>& running() const { return running_; }
  bool empty() const { return waiting_.empty() && running_.empty(); }

 private:
  bool grow_blocks(Sequence& seq, int n_tokens_in_cache);
  void free_blocks(Sequence& seq);
  void preempt_newest(SchedulerOutput& plan);
  void admit_waiting(SchedulerOutput& plan, int& budget);
  // Adds the keys of `seq`'s full prompt blocks that are not committed yet.
  void add_in_flight(const Sequence& seq, std::unordered_set<uint64_t>& in_flight) const;
  void commit_full_blocks(Sequence& seq);

  BlockManager& blocks_;
  SchedulerOptions options_;
  std::deque<Sequence*> waiting_;   // arrival order; preempted sequences re-enter at the front
  std::vector<Sequence*> running_;  // admission order: the last is preempted first
};

}  // namespace shardwise
