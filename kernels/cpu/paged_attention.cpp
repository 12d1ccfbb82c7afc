#include "kernels/cpu/paged_attention.h"

#include "common/check.h"
#include "kernels/cpu/paged_attention_impl.h"

namespace shardwise::cpu {
namespace detail {

void attention_items_scalar(const AttentionArgs& args, int begin, int end) {
  attention_items(args, begin, end);
}

}  // namespace detail
namespace {

void run(const detail::AttentionArgs& args, int n_tokens, CpuIsa isa) {
  SW_CHECK(cpu_supports(isa));
  SW_CHECK(args.n_kv_heads > 0 && args.n_heads % args.n_kv_heads == 0);
  SW_CHECK(args.head_dim > 0 && args.head_dim <= detail::kAttentionMaxHeadDim);
  const auto items = isa == CpuIsa::kAvx512 ? detail::attention_items_avx512
                     : isa == CpuIsa::kAvx2 ? detail::attention_items_avx2
                                            : detail::attention_items_scalar;
  const int n_items = n_tokens * args.n_kv_heads;
#pragma omp parallel for schedule(dynamic) if (n_items > 1)
  for (int item = 0; item < n_items; ++item) items(args, item, item + 1);
}

}  // namespace

void paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                     const int32_t* block_tables, const int32_t* seq_index,
                     const int32_t* context_lens, int n_tokens, int n_heads, int n_kv_heads,
                     int head_dim, int block_size, int max_blocks_per_seq, float scale,
                     CpuIsa isa) {
  run({out, q, k_cache, v_cache, false, block_tables, seq_index, context_lens, n_heads, n_kv_heads,
       head_dim, block_size, max_blocks_per_seq, scale},
      n_tokens, isa);
}

void paged_attention(float* out, const float* q, const uint16_t* k_cache, const uint16_t* v_cache,
                     const int32_t* block_tables, const int32_t* seq_index,
                     const int32_t* context_lens, int n_tokens, int n_heads, int n_kv_heads,
                     int head_dim, int block_size, int max_blocks_per_seq, float scale,
                     CpuIsa isa) {
  run({out, q, k_cache, v_cache, true, block_tables, seq_index, context_lens, n_heads, n_kv_heads,
       head_dim, block_size, max_blocks_per_seq, scale},
      n_tokens, isa);
}

}  // namespace shardwise::cpu
