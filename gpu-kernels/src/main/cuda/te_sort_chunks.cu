// TE sort-chunks kernels; see te_sort_chunks.cuh.
#include "te_sort_chunks.cuh"

#include "jni_util.hpp"  // check_launch (host side only)
#include "te_common.cuh"

namespace moespark {
namespace {

// One thread per row: binary search for the last chunk starting at or before p (empty chunks share
// their start with the next one, so the last such chunk is the non-empty one holding p).
__global__ void chunk_sort_map_kernel(const int32_t* __restrict__ src_start, const int32_t* __restrict__ dst_start,
                                      int32_t chunks, int64_t tokens, int32_t* __restrict__ map) {
  const int64_t end = chunks > 0 ? src_start[chunks] : 0;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < tokens;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (p >= end) {
      map[p] = static_cast<int32_t>(p);
      continue;
    }
    int lo = 0;           // src_start[lo] <= p
    int hi = chunks;      // src_start[hi] > p
    while (hi - lo > 1) {
      const int mid = (lo + hi) >> 1;
      if (src_start[mid] <= p) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    map[p] = static_cast<int32_t>(dst_start[lo] + (p - src_start[lo]));
  }
}

constexpr int kUnroll = 4;

// One warp per source row.
template <typename V>
__global__ void sort_chunks_rows_kernel(const V* __restrict__ src, int64_t row_vecs, const int32_t* __restrict__ map,
                                        int64_t tokens, const float* __restrict__ probs, V* __restrict__ out,
                                        float* __restrict__ out_probs) {
  const int lane = te::lane_id();
  for (int64_t p = te::warp_id(); p < tokens; p += te::warp_count()) {
    const int64_t d = __ldg(map + p);
    if (probs != nullptr && lane == 0) out_probs[d] = probs[p];
    const V* in = src + p * row_vecs;
    V* o = out + d * row_vecs;
    for (int64_t c0 = lane; c0 < row_vecs; c0 += 32 * kUnroll) {
      V v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + 32 * u;
        if (c < row_vecs) v[u] = in[c];
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + 32 * u;
        if (c < row_vecs) o[c] = v[u];
      }
    }
  }
}

template <typename V>
void rows(const void* inp, int64_t tokens, int64_t row_bytes, const int32_t* map, const float* probs, void* out,
          float* out_probs, cudaStream_t s) {
  sort_chunks_rows_kernel<V><<<te::warp_grid(tokens), te::kThreads, 0, s>>>(
      static_cast<const V*>(inp), row_bytes / static_cast<int64_t>(sizeof(V)), map, tokens, probs,
      static_cast<V*>(out), out_probs);
}

}  // namespace

void launch_te_chunk_sort_map(const int32_t* src_start, const int32_t* dst_start, int32_t chunks, int64_t num_tokens,
                              int32_t* map, cudaStream_t s) {
  if (num_tokens == 0) return;
  chunk_sort_map_kernel<<<te::thread_grid(num_tokens), te::kThreads, 0, s>>>(src_start, dst_start, chunks, num_tokens,
                                                                            map);
  check_launch("chunk_sort_map_kernel");
}

void launch_te_sort_chunks_rows(const void* inp, int64_t num_tokens, int64_t row_bytes, const int32_t* map,
                                const float* probs, void* out, float* out_probs, cudaStream_t s) {
  if (num_tokens == 0) return;
  switch (te::vector_bytes(row_bytes, inp, out)) {
    case 16: rows<uint4>(inp, num_tokens, row_bytes, map, probs, out, out_probs, s); break;
    case 8: rows<uint2>(inp, num_tokens, row_bytes, map, probs, out, out_probs, s); break;
    case 4: rows<uint32_t>(inp, num_tokens, row_bytes, map, probs, out, out_probs, s); break;
    case 2: rows<uint16_t>(inp, num_tokens, row_bytes, map, probs, out, out_probs, s); break;
    default: rows<uint8_t>(inp, num_tokens, row_bytes, map, probs, out, out_probs, s); break;
  }
  check_launch("sort_chunks_rows_kernel");
}

}  // namespace moespark
