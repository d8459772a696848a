// TransformerEngine moe_sort_chunks_by_index(_with_probs) on the GPU (spec moe-ops-semantics §9).
// Java API: org.moespark.ops.TeSortChunksGpu; CPU reference: org.moespark.ops.TeSortChunks. Kernels
// never allocate; the chunk offsets come from the host (split_sizes / sorted_index are host arrays).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// map[p] = dst_start[c] + (p - src_start[c]) for the chunk c holding row p (src_start has C + 1
// entries, src_start[C] = Σ split_sizes); rows p ≥ src_start[C] map to themselves.
void launch_te_chunk_sort_map(const int32_t* src_start, const int32_t* dst_start, int32_t chunks, int64_t num_tokens,
                              int32_t* map, cudaStream_t stream);

// out[map[p]] = inp[p] (row_bytes per row), and out_probs[map[p]] = probs[p] when probs is not null.
void launch_te_sort_chunks_rows(const void* inp, int64_t num_tokens, int64_t row_bytes, const int32_t* map,
                                const float* probs, void* out, float* out_probs, cudaStream_t stream);

}  // namespace moespark
