// TE index-map permute / unpermute kernels; see te_permute.cuh.
#include "te_permute.cuh"

#include <cub/device/device_radix_sort.cuh>

#include <climits>

#include "jni_util.hpp"  // check_launch / check_cuda (host side only)
#include "te_common.cuh"

namespace moespark {
namespace {

using te::Pack;

// First token (minimum over an order-independent atomicMin) that lists a non-negative expert twice.
__global__ void index_dup_kernel(const int32_t* __restrict__ idx, int64_t tokens, int32_t k, int32_t* __restrict__ flag) {
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < tokens;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t* r = idx + t * k;
    bool dup = false;
    for (int a = 0; a < k && !dup; ++a) {
      const int32_t e = r[a];
      if (e < 0) continue;
      for (int b = a + 1; b < k; ++b) {
        if (r[b] == e) {
          dup = true;
          break;
        }
      }
    }
    if (dup) atomicMin(flag, static_cast<int32_t>(t));
  }
}

__global__ void iota_kernel(int32_t* __restrict__ p, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = static_cast<int32_t>(i);
}

__global__ void fill_kernel(int32_t* __restrict__ p, int64_t n, int32_t v) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = v;
}

// Sorted position i holds flattened position p = t*K + k: map[k*N + t] = i (or -1 past num_out).
__global__ void index_map_kernel(const int32_t* __restrict__ pos, int64_t n, int64_t tokens, int32_t k, int64_t num_out,
                                 int32_t* __restrict__ map) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = pos[i];
    const int64_t t = p / k;
    const int64_t s = p - t * k;
    map[s * tokens + t] = i < num_out ? static_cast<int32_t>(i) : -1;
  }
}

constexpr int kUnroll = 4;

// One warp per source token: each 16-byte (or narrower) chunk is loaded once and stored to every
// kept row of the token; the map entries are warp-uniform loads (broadcast from L1).
template <typename V>
__global__ void index_permute_rows_kernel(const V* __restrict__ src, int64_t row_vecs, const int32_t* __restrict__ map,
                                          int64_t tokens, int32_t k, V* __restrict__ out) {
  const int lane = te::lane_id();
  for (int64_t t = te::warp_id(); t < tokens; t += te::warp_count()) {
    const V* in = src + t * row_vecs;
    for (int64_t c0 = lane; c0 < row_vecs; c0 += 32 * kUnroll) {
      V v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + 32 * u;
        if (c < row_vecs) v[u] = in[c];
      }
      for (int s = 0; s < k; ++s) {
        const int32_t r = __ldg(map + static_cast<int64_t>(s) * tokens + t);
        if (r < 0) continue;
        V* o = out + static_cast<int64_t>(r) * row_vecs;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t c = c0 + 32 * u;
          if (c < row_vecs) o[c] = v[u];
        }
      }
    }
  }
}

template <typename V>
void permute_rows(const void* inp, int64_t tokens, int64_t row_bytes, const int32_t* map, int32_t k, void* out,
                  cudaStream_t s) {
  index_permute_rows_kernel<V><<<te::warp_grid(tokens), te::kThreads, 0, s>>>(
      static_cast<const V*>(inp), row_bytes / static_cast<int64_t>(sizeof(V)), map, tokens, k, static_cast<V*>(out));
}

// Slots whose rows are loaded together in the unpermute (loads in flight per lane).
constexpr int kBatch = 4;

template <bool kSteps>
__device__ __forceinline__ float rnd(float x) {
  return kSteps ? te::round_bf16(x) : x;
}

// One warp per output token; each lane owns packs of N elements and walks the slots in order.
template <typename T, int N, bool kSteps>
__global__ void index_unpermute_kernel(const T* __restrict__ inp, int64_t num_rows, int64_t hidden,
                                       const int32_t* __restrict__ map, const float* __restrict__ probs, int64_t tokens,
                                       int32_t k, T* __restrict__ out, int32_t* __restrict__ bad) {
  using P = Pack<T, N>;
  const int lane = te::lane_id();
  const int64_t packs = hidden / N;
  const P* in = reinterpret_cast<const P*>(inp);
  P* o = reinterpret_cast<P*>(out);
  for (int64_t t = te::warp_id(); t < tokens; t += te::warp_count()) {
    for (int s = lane; s < k; s += 32) {
      const int32_t r = map[static_cast<int64_t>(s) * tokens + t];
      if (r < -1 || r >= num_rows) atomicMin(bad, static_cast<int32_t>(s * tokens + t));
    }
    for (int64_t c = lane; c < packs; c += 32) {
      float acc[N];
      const int32_t r0 = __ldg(map + t);
      if (r0 >= 0 && r0 < num_rows) {
        const P x = in[static_cast<int64_t>(r0) * packs + c];
        const float p = probs != nullptr ? rnd<kSteps>(__ldg(probs + t * k)) : 1.f;
#pragma unroll
        for (int i = 0; i < N; ++i) {
          acc[i] = te::to_f32<T>(x.v[i]);
          if (probs != nullptr) acc[i] = rnd<kSteps>(te::mul_rn(acc[i], p));
        }
      } else {
#pragma unroll
        for (int i = 0; i < N; ++i) acc[i] = 0.f;
      }
      // Slots 1..k-1 in groups of kBatch: the group's loads are issued before its (in-order)
      // accumulation, so several 16-byte loads are in flight per lane; the result is unchanged.
      for (int s0 = 1; s0 < k; s0 += kBatch) {
        P x[kBatch];
        bool use[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int s = s0 + u;
          const int32_t r = s < k ? __ldg(map + static_cast<int64_t>(s) * tokens + t) : -1;
          use[u] = r >= 0 && r < num_rows;
          if (use[u]) x[u] = in[static_cast<int64_t>(r) * packs + c];
        }
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          if (!use[u]) continue;
          if (probs != nullptr) {
            const float p = rnd<kSteps>(__ldg(probs + t * k + s0 + u));
#pragma unroll
            for (int i = 0; i < N; ++i) {
              acc[i] = rnd<kSteps>(te::add_rn(acc[i], rnd<kSteps>(te::mul_rn(te::to_f32<T>(x[u].v[i]), p))));
            }
          } else {
#pragma unroll
            for (int i = 0; i < N; ++i) acc[i] = rnd<kSteps>(te::add_rn(acc[i], te::to_f32<T>(x[u].v[i])));
          }
        }
      }
      P y;
#pragma unroll
      for (int i = 0; i < N; ++i) y.v[i] = te::from_f32<T>(acc[i]);
      o[t * packs + c] = y;
    }
  }
}

template <typename T, int N>
void unpermute_typed(bool steps, const void* inp, int64_t num_rows, int64_t hidden, const int32_t* map,
                     const float* probs, int64_t tokens, int32_t k, void* out, int32_t* bad, cudaStream_t s) {
  const int grid = te::warp_grid(tokens);
  if (steps) {
    index_unpermute_kernel<T, N, true><<<grid, te::kThreads, 0, s>>>(static_cast<const T*>(inp), num_rows, hidden, map,
                                                                      probs, tokens, k, static_cast<T*>(out), bad);
  } else {
    index_unpermute_kernel<T, N, false><<<grid, te::kThreads, 0, s>>>(static_cast<const T*>(inp), num_rows, hidden, map,
                                                                       probs, tokens, k, static_cast<T*>(out), bad);
  }
}

}  // namespace

void launch_te_fill_i32(int32_t* p, int64_t n, int32_t v, cudaStream_t s) {
  if (n == 0) return;
  fill_kernel<<<te::thread_grid(n), te::kThreads, 0, s>>>(p, n, v);
  check_launch("fill_kernel");
}

size_t te_index_sort_temp_bytes(int64_t n) {
  size_t bytes = 0;
  check_cuda(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const uint32_t*>(nullptr),
                                             static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                             static_cast<int32_t*>(nullptr), static_cast<int>(n)),
             "cub::DeviceRadixSort::SortPairs (temp size)");
  return bytes;
}

void launch_te_index_map(const TeIndexMapArgs& a, cudaStream_t s) {
  fill_kernel<<<1, 32, 0, s>>>(a.dup_flag, 1, INT32_MAX);
  check_launch("fill_kernel");
  const int64_t n = a.num_tokens * a.top_k;
  if (n == 0) return;
  index_dup_kernel<<<te::thread_grid(a.num_tokens), te::kThreads, 0, s>>>(a.indices, a.num_tokens, a.top_k, a.dup_flag);
  check_launch("index_dup_kernel");
  iota_kernel<<<te::thread_grid(n), te::kThreads, 0, s>>>(a.pos_in, n);
  check_launch("iota_kernel");
  size_t temp = a.sort_temp_bytes;
  // Unsigned keys: negative ids sort after every real expert, as upstream (TE #2908 fix).
  check_cuda(cub::DeviceRadixSort::SortPairs(a.sort_temp, temp, reinterpret_cast<const uint32_t*>(a.indices), a.keys_out,
                                             a.pos_in, a.pos_out, static_cast<int>(n), 0, 32, s),
             "cub::DeviceRadixSort::SortPairs");
  check_launch("cub::DeviceRadixSort::SortPairs");
  index_map_kernel<<<te::thread_grid(n), te::kThreads, 0, s>>>(a.pos_out, n, a.num_tokens, a.top_k, a.num_out,
                                                                a.row_id_map);
  check_launch("index_map_kernel");
}

void launch_te_index_permute_rows(const void* inp, int64_t num_tokens, int64_t row_bytes, const int32_t* row_id_map,
                                  int32_t top_k, void* out, cudaStream_t s) {
  if (num_tokens == 0 || row_bytes == 0) return;
  switch (te::vector_bytes(row_bytes, inp, out)) {
    case 16: permute_rows<uint4>(inp, num_tokens, row_bytes, row_id_map, top_k, out, s); break;
    case 8: permute_rows<uint2>(inp, num_tokens, row_bytes, row_id_map, top_k, out, s); break;
    case 4: permute_rows<uint32_t>(inp, num_tokens, row_bytes, row_id_map, top_k, out, s); break;
    case 2: permute_rows<uint16_t>(inp, num_tokens, row_bytes, row_id_map, top_k, out, s); break;
    default: permute_rows<uint8_t>(inp, num_tokens, row_bytes, row_id_map, top_k, out, s); break;
  }
  check_launch("index_permute_rows_kernel");
}

void launch_te_index_unpermute(bool bf16, bool bf16_steps, const void* inp, int64_t num_rows, int64_t hidden,
                               const int32_t* row_id_map, const float* probs, int64_t num_tokens, int32_t top_k,
                               void* out, int32_t* bad, cudaStream_t s) {
  if (num_tokens == 0) return;  // hidden == 0 still validates the map
  const int64_t es = bf16 ? 2 : 4;
  const bool wide = te::vector_bytes(hidden * es, inp, out) == 16;
  if (bf16) {
    if (wide) {
      unpermute_typed<uint16_t, 8>(bf16_steps, inp, num_rows, hidden, row_id_map, probs, num_tokens, top_k, out, bad, s);
    } else {
      unpermute_typed<uint16_t, 1>(bf16_steps, inp, num_rows, hidden, row_id_map, probs, num_tokens, top_k, out, bad, s);
    }
  } else if (wide) {
    unpermute_typed<float, 4>(false, inp, num_rows, hidden, row_id_map, probs, num_tokens, top_k, out, bad, s);
  } else {
    unpermute_typed<float, 1>(false, inp, num_rows, hidden, row_id_map, probs, num_tokens, top_k, out, bad, s);
  }
  check_launch("index_unpermute_kernel");
}

}  // namespace moespark
