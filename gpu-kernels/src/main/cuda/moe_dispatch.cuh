// Paddle incubate moe_dispatch on the GPU (moe-ops-semantics.md §5): the gating runs in routing.cu
// (modes kRouteSoftmaxTopK / kRouteTopKRaw / kRouteGroupSoftmax), the expert-major maps and the row
// gather in moe_permute.cu (align 1: no padding); this file holds the two small kernels in between.
// Java side: org.moespark.ops.MoeDispatchGpu. Kernels never allocate.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// counts[e] = number of slots of ids [n] equal to e (ids outside [0, E) are not counted). counts must
// be zeroed first (the launcher does it on the stream). Integer atomics: the totals do not depend on
// their order.
void launch_dispatch_histogram(const int32_t* ids, int64_t n, int32_t experts, int32_t* counts, cudaStream_t stream);

// perm[j * T + t] = rowmap[t * E + ids[t * K + j]] (permute_indices_per_token, k-major).
void launch_dispatch_indices(const int32_t* ids, const int32_t* rowmap, int64_t tokens, int32_t top_k, int32_t experts,
                             int32_t* perm, cudaStream_t stream);

}  // namespace moespark
