// paged_attention_impl.h compiled with the AVX512 flags (kernels/cpu/CMakeLists.txt).
#include "kernels/cpu/paged_attention_impl.h"

namespace shardwise::cpu::detail {

void attention_items_avx512(const AttentionArgs& args, int begin, int end) {
  attention_items(args, begin, end);
}

}  // namespace shardwise::cpu::detail
