// Paddle incubate moe_dispatch on the GPU (moe-ops-semantics.md §5): the gating runs in routing.cu
// (modes kRouteSoftmaxTopK / kRouteTopKRaw / kRouteGroupSoftmax), the expert-major maps and the row
// gather in moe_permute.cu (align 1: no padding; the maps also count the rows per expert); this file holds
// the small kernel after them.
// Java side: org.moespark.ops.MoeDispatchGpu. Kernels never allocate.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// perm[j * T + t] = rowmap[t * E + ids[t * K + j]] (permute_indices_per_token, k-major).
void launch_dispatch_indices(const int32_t* ids, const int32_t* rowmap, int64_t tokens, int32_t top_k, int32_t experts,
                             int32_t* perm, cudaStream_t stream);

}  // namespace moespark
