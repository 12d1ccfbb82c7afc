// GPU sampling without sorting the vocabulary. Each row's kept set is a prefix of the order
// "logit descending, token id ascending" (the order of shard/sampler.cpp): top_k, min_p and
// top_p each cut that order at one (key, last id) point. The cuts are found by radix select
// over the logits' order-preserving 32-bit keys (4 passes of 8 bits with a shared-memory
// histogram), and ties at a cut are split by id with a second radix select over the ids.
// Probabilities are fixed-point integers (exp((logit - max) / T) * 2^40), so every sum is exact
// and the drawn token depends only on (logits, seed, offset), never on thread timing.
#include <curand_kernel.h>

#include <climits>
#include <cstdint>

#include "common/check.h"
#include "kernels/cuda/sampling.h"

namespace shardwise::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kUnroll = 8;  // elements per thread loaded together: memory-level parallelism
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr float kWeightScale = 1099511627776.0f;  // 2^40: the top token's weight

// A cut of the order (key descending, id ascending): keeps key > key_cut, and key == key_cut
// for ids <= last_id.
struct Cut {
  uint32_t key = 0;
  int last_id = INT_MAX;
  __device__ bool keeps(uint32_t k, int id) const { return k > key || (k == key && id <= last_id); }
};

// Maps floats to unsigned integers of the same order. -0.0 is first made +0.0 (x + 0.0f is
// +0.0 for both zeros): the two compare equal, so their tie must go to the lower id as on the
// CPU, not to whichever zero has the larger bit pattern.
__device__ inline uint32_t order_key(float x) {
  const uint32_t bits = __float_as_uint(x + 0.0f);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// The shared state of one row's block.
struct Shared {
  unsigned long long bins[kBins];
  unsigned long long warp_sums[kWarps];
  float warp_max[kWarps];
  int warp_argmax[kWarps];
  uint32_t prefix;
  unsigned long long above;
  unsigned long long at_weight;
  unsigned long long draw;
  int draw_warp;
  int token;
};

__device__ unsigned long long block_sum(unsigned long long value, Shared& s) {
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffff, value, offset);
  __syncthreads();  // warp_sums may still be read by a previous call
  if (threadIdx.x % 32 == 0) s.warp_sums[threadIdx.x / 32] = value;
  __syncthreads();
  unsigned long long total = 0;
  for (int w = 0; w < kWarps; ++w) total += s.warp_sums[w];
  return total;
}

// The row's largest logit and its lowest id.
__device__ void block_argmax(const float* logits, int vocab, Shared& s, float& max_logit,
                             int& max_id) {
  float best = -INFINITY;
  int best_id = INT_MAX;
#pragma unroll 8
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float x = logits[i];
    if (x > best || (x == best && i < best_id)) best = x, best_id = i;
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(0xffffffff, best, offset);
    const int other_id = __shfl_xor_sync(0xffffffff, best_id, offset);
    if (other > best || (other == best && other_id < best_id)) best = other, best_id = other_id;
  }
  if (threadIdx.x % 32 == 0) {
    s.warp_max[threadIdx.x / 32] = best;
    s.warp_argmax[threadIdx.x / 32] = best_id;
  }
  __syncthreads();
  best = s.warp_max[0];
  best_id = s.warp_argmax[0];
  for (int w = 1; w < kWarps; ++w) {
    if (s.warp_max[w] > best || (s.warp_max[w] == best && s.warp_argmax[w] < best_id))
      best = s.warp_max[w], best_id = s.warp_argmax[w];
  }
  max_logit = best;
  max_id = best_id;
}

struct Selection {
  uint32_t key;                  // where the cumulative weight reaches the target
  unsigned long long above;      // weight of the keys above it
  unsigned long long at_weight;  // weight of the elements with exactly this key
};

// Radix select: among elements i in [0, count) with weight w > 0 (key_weight(i) -> (key, w)),
// ordered by key descending, the key at which the cumulative weight first reaches target
// (1 <= target <= total weight). Same-bin additions within a warp are combined before the
// shared-memory atomic, since the high bits of most keys agree.
template <typename KeyWeight>
__device__ Selection radix_select(int count, unsigned long long target, KeyWeight key_weight,
                                  Shared& s) {
  const int lane = threadIdx.x % 32;
  uint32_t prefix = 0, mask = 0;
  unsigned long long above = 0, at_weight = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < kBins; b += kThreads) s.bins[b] = 0;
    __syncthreads();
    for (int base = 0; base < count; base += kThreads * kUnroll) {
      uint32_t keys[kUnroll];
      unsigned long long weights[kUnroll];
#pragma unroll
      for (int j = 0; j < kUnroll; ++j) {
        const int i = base + j * kThreads + threadIdx.x;
        keys[j] = 0;
        weights[j] = 0;
        if (i < count) key_weight(i, keys[j], weights[j]);
      }
#pragma unroll
      for (int j = 0; j < kUnroll; ++j) {
        const bool counted = weights[j] > 0 && (keys[j] & mask) == prefix;
        const int bin = counted ? static_cast<int>((keys[j] >> shift) & (kBins - 1)) : kBins;
        const unsigned peers = __match_any_sync(0xffffffff, bin);
        if (bin == kBins) continue;
        unsigned long long sum = 0;
        for (unsigned rest = peers; rest != 0; rest &= rest - 1)
          sum += __shfl_sync(peers, weights[j], __ffs(rest) - 1);
        if (lane == __ffs(peers) - 1) atomicAdd(&s.bins[bin], sum);
      }
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l holds bins 255 - 8l down to 248 - 8l: scanning lanes upward scans keys downward.
      unsigned long long lane_sum = 0;
      for (int j = 0; j < 8; ++j) lane_sum += s.bins[kBins - 1 - 8 * lane - j];
      unsigned long long inclusive = lane_sum;
      for (int offset = 1; offset < 32; offset *= 2) {
        const unsigned long long other = __shfl_up_sync(0xffffffff, inclusive, offset);
        if (lane >= offset) inclusive += other;
      }
      unsigned long long cumulative = above + inclusive - lane_sum;
      if (cumulative < target && target <= above + inclusive) {
        for (int j = 0; j < 8; ++j) {
          const int b = kBins - 1 - 8 * lane - j;
          if (cumulative + s.bins[b] >= target) {
            s.prefix = prefix | (static_cast<uint32_t>(b) << shift);
            s.above = cumulative;
            s.at_weight = s.bins[b];
            break;
          }
          cumulative += s.bins[b];
        }
      }
    }
    __syncthreads();
    prefix = s.prefix;
    above = s.above;
    at_weight = s.at_weight;
    mask |= static_cast<uint32_t>(kBins - 1) << shift;
    __syncthreads();  // everyone has read s.prefix before the next pass may overwrite it
  }
  return {prefix, above, at_weight};
}

// The cut of the order (key descending, id ascending) at which the cumulative weight of
// key_weight first reaches target. Elements with equal keys have equal weights (equal logits),
// so the ties needed are counted, and if not all are needed the lowest ids are chosen.
template <typename KeyWeight>
__device__ Cut select_cut(int vocab, unsigned long long target, KeyWeight key_weight, Shared& s) {
  const Selection at = radix_select(vocab, target, key_weight, s);
  Cut cut{at.key, INT_MAX};
  // The weight of one element with this key: find any such element's weight. All weights of
  // one key are equal, so it is at_weight / count; count the elements first.
  unsigned long long count = 0, one = 0;
#pragma unroll 8
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    uint32_t key = 0;
    unsigned long long w = 0;
    key_weight(i, key, w);
    if (w > 0 && key == at.key) ++count, one = w;
  }
  count = block_sum(count, s);
  __syncthreads();
  if (one > 0) s.draw = one;  // any element's weight will do: they are equal
  __syncthreads();
  one = s.draw;
  const unsigned long long needed = (target - at.above + one - 1) / one;
  if (needed >= count) return cut;
  // Keep the `needed` lowest ids among the tied elements: select on the complemented id.
  const Selection by_id = radix_select(
      vocab, needed,
      [&](int i, uint32_t& key, unsigned long long& w) {
        uint32_t k = 0;
        unsigned long long weight = 0;
        key_weight(i, k, weight);
        key = ~static_cast<uint32_t>(i);
        w = weight > 0 && k == at.key ? 1 : 0;
      },
      s);
  cut.last_id = static_cast<int>(~by_id.key);
  return cut;
}

// Draws a token with probability weight(i) / sum of weights: each warp owns a contiguous
// segment of the vocabulary; the warp whose segment holds the drawn point scans it in order.
template <typename Weight>
__device__ int draw_token(int vocab, Weight weight, unsigned long long random, Shared& s) {
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int segment = ((vocab + kWarps - 1) / kWarps + 31) / 32 * 32;
  const int begin = warp * segment;
  const int end = min(vocab, begin + segment);
  unsigned long long sum = 0;
#pragma unroll 8
  for (int i = begin + lane; i < end; i += 32) sum += weight(i);
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffff, sum, offset);
  __syncthreads();
  if (lane == 0) s.warp_sums[warp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long total = 0;
    for (int w = 0; w < kWarps; ++w) total += s.warp_sums[w];
    unsigned long long point = __umul64hi(random, total);  // uniform in [0, total)
    int chosen = -1;
    for (int w = 0; w < kWarps && chosen < 0; ++w) {
      if (point < s.warp_sums[w]) {
        chosen = w;
      } else {
        point -= s.warp_sums[w];
      }
    }
    s.draw_warp = chosen;
    s.draw = point;
  }
  __syncthreads();
  if (warp == s.draw_warp) {
    unsigned long long point = s.draw;
    for (int chunk = begin; chunk < end; chunk += 32) {
      const int i = chunk + lane;
      const unsigned long long w = i < end ? weight(i) : 0;
      unsigned long long inclusive = w;
      for (int offset = 1; offset < 32; offset *= 2) {
        const unsigned long long other = __shfl_up_sync(0xffffffff, inclusive, offset);
        if (lane >= offset) inclusive += other;
      }
      const unsigned hit = __ballot_sync(0xffffffff, inclusive > point);
      if (hit != 0) {
        if (lane == __ffs(hit) - 1) s.token = i;
        break;
      }
      point -= __shfl_sync(0xffffffff, inclusive, 31);
    }
  }
  __syncthreads();
  return s.token;
}

// grid: (n_rows), block: (kThreads); one block samples one row. Passes over the row (from L2
// after the first): argmax; top_k: 4 + 1 (+4 on ties); top_p: 1 + 4 + 1 (+4); the draw: 1.
__global__ void __launch_bounds__(kThreads)
    sample_kernel(int32_t* __restrict__ tokens,          // [n_rows]
                  const float* __restrict__ all_logits,  // [n_rows, vocab]
                  const SamplingRow* __restrict__ rows,  // [n_rows]
                  int vocab) {
  __shared__ Shared s;
  const SamplingRow row = rows[blockIdx.x];
  const float* logits = all_logits + static_cast<size_t>(blockIdx.x) * vocab;
  float max_logit = 0.0f;
  int max_id = 0;
  block_argmax(logits, vocab, s, max_logit, max_id);
  if (max_id >= vocab) max_id = 0;  // an all-NaN row
  // A temperature so small that 1 / temperature overflows is greedy too: the top token's
  // weight would be (0 * inf) = NaN.
  if (row.temperature <= 0.0f || isinf(1.0f / row.temperature) || row.top_k == 1 ||
      !isfinite(max_logit)) {
    if (threadIdx.x == 0) tokens[blockIdx.x] = max_id;
    return;
  }

  Cut top_k;
  if (row.top_k > 0 && row.top_k < vocab) {
    top_k = select_cut(
        vocab, static_cast<unsigned long long>(row.top_k),
        [&](int i, uint32_t& key, unsigned long long& w) {
          key = order_key(logits[i]);
          w = 1;
        },
        s);
  }
  const float inv_temperature = 1.0f / row.temperature;
  const float min_p = row.min_p;
  // Weight after top_k and min_p: the top token weighs 2^40.
  auto weight_k_min_p = [&](int i, uint32_t& key, unsigned long long& w) {
    const float x = logits[i];
    key = order_key(x);
    w = 0;
    if (!top_k.keeps(key, i)) return;
    const float p = expf((x - max_logit) * inv_temperature);
    if (p < min_p) return;
    w = __float2ull_rn(p * kWeightScale);
  };
  Cut top_p;
  if (row.top_p < 1.0f) {
    unsigned long long total = 0;
#pragma unroll 8
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      uint32_t key = 0;
      unsigned long long w = 0;
      weight_k_min_p(i, key, w);
      total += w;
    }
    total = block_sum(total, s);
    // The smallest prefix whose weight reaches top_p of the total: sums are integers, so
    // "sum >= top_p * total" is "sum >= ceil(top_p * total)".
    unsigned long long target =
        static_cast<unsigned long long>(ceil(static_cast<double>(row.top_p) * total));
    target = min(max(target, 1ull), total);
    top_p = select_cut(vocab, target, weight_k_min_p, s);
  }

  if (threadIdx.x == 0) s.token = max_id;  // unless the draw finds one (it always should)
  curandStatePhilox4_32_10_t state;
  curand_init(row.seed, row.offset, 0, &state);
  const uint4 bits = curand4(&state);
  const unsigned long long random = (static_cast<unsigned long long>(bits.x) << 32) | bits.y;
  const int token = draw_token(
      vocab,
      [&](int i) -> unsigned long long {
        uint32_t key = 0;
        unsigned long long w = 0;
        weight_k_min_p(i, key, w);
        return top_p.keeps(key, i) ? w : 0;
      },
      random, s);
  if (threadIdx.x == 0) tokens[blockIdx.x] = token;
}

}  // namespace

std::size_t sample_workspace_bytes(int /*n_rows*/, int /*vocab*/) { return 0; }

void launch_sample(int32_t* tokens, const float* logits, const SamplingRow* rows, int n_rows,
                   int vocab, void* /*workspace*/, cudaStream_t stream) {
  SW_CHECK(vocab > 0);
  if (n_rows == 0) return;
  sample_kernel<<<n_rows, kThreads, 0, stream>>>(tokens, logits, rows, vocab);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace shardwise::cuda
