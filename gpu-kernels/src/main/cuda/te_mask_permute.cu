// TE mask-map permutation kernels; see te_mask_permute.cuh.
#include "te_mask_permute.cuh"

#include <climits>

#include "jni_util.hpp"  // check_launch (host side only)
#include "te_common.cuh"

namespace moespark {
namespace {

using te::Pack;
constexpr int kTB = kTeMaskTokensPerBlock;

__global__ void status_init_kernel(int64_t* status) {
  status[0] = INT64_MAX;
  status[1] = 0;
}

// One thread per (block of 32 tokens, expert): builds the routed-token word of the pair. Threads of a
// warp take consecutive experts, so every routing_map read is coalesced. The first byte that is not
// 0/1 is reported through atomicMin (the minimum does not depend on thread order).
__global__ void mask_bits_kernel(const uint8_t* __restrict__ rm, int64_t tokens, int32_t experts, int64_t nblocks,
                                 uint32_t* __restrict__ bits, int64_t* __restrict__ status) {
  const int64_t total = nblocks * experts;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = i / experts;
    const int64_t e = i - b * experts;
    uint32_t word = 0;
    int64_t bad = INT64_MAX;
    for (int j = 0; j < kTB; ++j) {
      const int64_t t = b * kTB + j;
      if (t >= tokens) break;
      const uint8_t v = rm[t * experts + e];
      if (v == 1) {
        word |= 1u << j;
      } else if (v != 0 && bad == INT64_MAX) {
        bad = t * experts + e;
      }
    }
    bits[i] = word;
    if (bad != INT64_MAX) atomicMin(reinterpret_cast<unsigned long long*>(status), static_cast<unsigned long long>(bad));
  }
}

// One warp per expert: exclusive prefix over blocks of the per-block counts, and the total.
__global__ void mask_scan_kernel(const uint32_t* __restrict__ bits, int64_t nblocks, int32_t experts,
                                 int32_t* __restrict__ prefix, int32_t* __restrict__ counts) {
  const int lane = te::lane_id();
  for (int64_t e = te::warp_id(); e < experts; e += te::warp_count()) {
    int64_t carry = 0;
    for (int64_t b0 = 0; b0 < nblocks; b0 += 32) {
      const int64_t b = b0 + lane;
      const int32_t c = b < nblocks ? __popc(bits[b * experts + e]) : 0;
      int32_t incl = c;
#pragma unroll
      for (int d = 1; d < 32; d <<= 1) {
        const int32_t v = __shfl_up_sync(0xffffffffu, incl, d);
        if (lane >= d) incl += v;
      }
      if (b < nblocks) prefix[b * experts + e] = static_cast<int32_t>(carry + incl - c);
      carry += __shfl_sync(0xffffffffu, incl, 31);
    }
    if (lane == 0) counts[e] = static_cast<int32_t>(carry);
  }
}

// One thread: expert bases (exclusive prefix of the counts, 64-bit) and the total.
__global__ void mask_base_kernel(const int32_t* __restrict__ counts, int32_t experts, int64_t* __restrict__ base,
                                 int64_t* __restrict__ status) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  int64_t run = 0;
  for (int e = 0; e < experts; ++e) {
    base[e] = run;
    run += counts[e];
  }
  status[1] = run;
}

// One warp per token: its routed experts in descending order (lane 0 takes the highest expert of
// each group of 32), the row of (t, e) = base[e] + prefix[b][e] + rank of t in its block.
__global__ void mask_map_kernel(TeMaskMapArgs a) {
  const int lane = te::lane_id();
  const int32_t E = a.experts;
  const int64_t W = 2 * static_cast<int64_t>(E) + 1;
  for (int64_t t = te::warp_id(); t < a.num_tokens; t += te::warp_count()) {
    const int64_t b = t / kTB;
    const int j = static_cast<int>(t - b * kTB);
    const uint32_t below = (1u << j) - 1u;
    int32_t* m = a.row_id_map + t * W;
    int n = 0;
    for (int e0 = 0; e0 < E; e0 += 32) {
      const int e = E - 1 - (e0 + lane);
      uint32_t word = 0;
      if (e >= 0) word = a.bits[b * E + e];
      const bool routed = e >= 0 && ((word >> j) & 1u);
      const unsigned mask = __ballot_sync(0xffffffffu, routed);
      if (routed) {
        const int pos = n + __popc(mask & ((1u << lane) - 1u));
        m[pos] = static_cast<int32_t>(a.base[e] + a.prefix[b * E + e] + __popc(word & below));
        m[E + pos] = e;
      }
      n += __popc(mask);
    }
    for (int c = n + lane; c < E; c += 32) {
      m[c] = -1;
      m[E + c] = -1;
    }
    if (lane == 0) m[2 * E] = n;
  }
}

constexpr int kUnroll = 4;

template <typename V>
__global__ void mask_permute_rows_kernel(const V* __restrict__ src, int64_t row_vecs, const int32_t* __restrict__ map,
                                         int64_t tokens, int32_t experts, const float* __restrict__ probs,
                                         const int32_t* __restrict__ pad, V* __restrict__ out,
                                         float* __restrict__ out_probs) {
  const int lane = te::lane_id();
  const int64_t W = 2 * static_cast<int64_t>(experts) + 1;
  V zero;
  memset(&zero, 0, sizeof(V));
  for (int64_t t = te::warp_id(); t < tokens; t += te::warp_count()) {
    const int32_t* m = map + t * W;
    const int n = __ldg(m + 2 * experts);
    if (probs != nullptr) {
      for (int i = lane; i < n; i += 32) {
        const int32_t e = m[experts + i];
        const int64_t r = static_cast<int64_t>(m[i]) + (pad != nullptr ? pad[e] : 0);
        out_probs[r] = probs[t * experts + e];
      }
    }
    if (n == 0 || row_vecs == 0) continue;
    const V* in = src + t * row_vecs;
    for (int64_t c0 = lane; c0 < row_vecs; c0 += 32 * kUnroll) {
      V v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t c = c0 + 32 * u;
        if (c < row_vecs) v[u] = in[c];
      }
      for (int i = 0; i < n; ++i) {
        const int32_t e = __ldg(m + experts + i);
        const int64_t r = static_cast<int64_t>(__ldg(m + i)) + (pad != nullptr ? __ldg(pad + e) : 0);
        // TE's routing-map padding convention: a routed slot whose prob is ±0 gets a zero row.
        const bool zero_row = probs != nullptr && __ldg(probs + t * experts + e) == 0.f;
        V* o = out + r * row_vecs;
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const int64_t c = c0 + 32 * u;
          if (c < row_vecs) o[c] = zero_row ? zero : v[u];
        }
      }
    }
  }
}

template <typename V>
void permute_rows(const void* inp, int64_t tokens, int64_t row_bytes, const int32_t* map, int32_t experts,
                  const float* probs, const int32_t* pad, void* out, float* out_probs, cudaStream_t s) {
  mask_permute_rows_kernel<V><<<te::warp_grid(tokens), te::kThreads, 0, s>>>(
      static_cast<const V*>(inp), row_bytes / static_cast<int64_t>(sizeof(V)), map, tokens, experts, probs, pad,
      static_cast<V*>(out), out_probs);
}

template <typename V>
__global__ void mask_zero_padding_kernel(int64_t row_vecs, const int32_t* __restrict__ start,
                                         const int32_t* __restrict__ count, int32_t experts, V* __restrict__ out,
                                         float* __restrict__ out_probs) {
  const int lane = te::lane_id();
  V zero;
  memset(&zero, 0, sizeof(V));
  for (int64_t e = te::warp_id(); e < experts; e += te::warp_count()) {
    const int64_t r0 = start[e];
    const int32_t nr = count[e];
    for (int q = 0; q < nr; ++q) {
      V* o = out + (r0 + q) * row_vecs;
      for (int64_t c = lane; c < row_vecs; c += 32) o[c] = zero;
      if (lane == 0 && out_probs != nullptr) out_probs[r0 + q] = 0.f;
    }
  }
}

template <typename V>
void zero_padding(int64_t row_bytes, const int32_t* start, const int32_t* count, int32_t experts, void* out,
                  float* out_probs, cudaStream_t s) {
  mask_zero_padding_kernel<V><<<te::warp_grid(experts), te::kThreads, 0, s>>>(
      row_bytes / static_cast<int64_t>(sizeof(V)), start, count, experts, static_cast<V*>(out), out_probs);
}

// Pairs whose rows are loaded together in the unpermute (loads in flight per lane).
constexpr int kBatch = 4;

// One warp per token: validates the token's map row (lanes in parallel), then each lane reduces its
// packs over the n pairs in map order.
template <typename T, int N>
__global__ void mask_unpermute_kernel(const T* __restrict__ inp, int64_t num_rows, int64_t hidden,
                                      const int32_t* __restrict__ map, int32_t experts, const float* __restrict__ probs,
                                      int64_t tokens, const int32_t* __restrict__ pad, T* __restrict__ out,
                                      int32_t* __restrict__ bad) {
  using P = Pack<T, N>;
  const int lane = te::lane_id();
  const int64_t W = 2 * static_cast<int64_t>(experts) + 1;
  const int64_t packs = hidden / N;
  const P* in = reinterpret_cast<const P*>(inp);
  P* o = reinterpret_cast<P*>(out);
  for (int64_t t = te::warp_id(); t < tokens; t += te::warp_count()) {
    const int32_t* m = map + t * W;
    const int32_t n = m[2 * experts];
    bool ok = n >= 0 && n <= experts;
    if (ok) {
      for (int i = lane; i < n; i += 32) {
        const int32_t e = m[experts + i];
        const int32_t r = m[i];
        bool good = e >= 0 && e < experts && r >= 0;
        if (good && i > 0) good = e < m[experts + i - 1];
        if (good) good = static_cast<int64_t>(r) + (pad != nullptr ? pad[e] : 0) < num_rows;
        if (!good) ok = false;
      }
    }
    ok = __all_sync(0xffffffffu, ok);
    if (!ok) {
      if (lane == 0) atomicMin(bad, static_cast<int32_t>(t));
      continue;
    }
    for (int64_t c = lane; c < packs; c += 32) {
      float acc[N];
#pragma unroll
      for (int q = 0; q < N; ++q) acc[q] = 0.f;
      // Pairs in groups of kBatch: the group's loads are issued before its (in-order) accumulation,
      // so several 16-byte loads are in flight per lane; the result is unchanged.
      for (int i0 = 0; i0 < n; i0 += kBatch) {
        P x[kBatch];
        int32_t ex[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int i = i0 + u;
          ex[u] = -1;
          if (i < n) {
            ex[u] = __ldg(m + experts + i);
            const int64_t r = static_cast<int64_t>(__ldg(m + i)) + (pad != nullptr ? __ldg(pad + ex[u]) : 0);
            x[u] = in[r * packs + c];
          }
        }
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          if (ex[u] < 0) continue;
          if (probs != nullptr) {
            const float p = __ldg(probs + t * experts + ex[u]);
#pragma unroll
            for (int q = 0; q < N; ++q) acc[q] = te::add_rn(acc[q], te::mul_rn(te::to_f32<T>(x[u].v[q]), p));
          } else {
#pragma unroll
            for (int q = 0; q < N; ++q) acc[q] = te::add_rn(acc[q], te::to_f32<T>(x[u].v[q]));
          }
        }
      }
      P y;
#pragma unroll
      for (int q = 0; q < N; ++q) y.v[q] = te::from_f32<T>(acc[q]);
      o[t * packs + c] = y;
    }
  }
}

template <typename T, int N>
void unpermute_typed(const void* inp, int64_t num_rows, int64_t hidden, const int32_t* map, int32_t experts,
                     const float* probs, int64_t tokens, const int32_t* pad, void* out, int32_t* bad, cudaStream_t s) {
  mask_unpermute_kernel<T, N><<<te::warp_grid(tokens), te::kThreads, 0, s>>>(
      static_cast<const T*>(inp), num_rows, hidden, map, experts, probs, tokens, pad, static_cast<T*>(out), bad);
}

}  // namespace

void launch_te_mask_map(const TeMaskMapArgs& a, cudaStream_t s) {
  status_init_kernel<<<1, 1, 0, s>>>(a.status);
  check_launch("status_init_kernel");
  const int64_t nblocks = te_mask_blocks(a.num_tokens);
  if (a.num_tokens > 0) {
    mask_bits_kernel<<<te::thread_grid(nblocks * a.experts), te::kThreads, 0, s>>>(a.routing_map, a.num_tokens,
                                                                                 a.experts, nblocks, a.bits, a.status);
    check_launch("mask_bits_kernel");
    mask_scan_kernel<<<te::warp_grid(a.experts), te::kThreads, 0, s>>>(a.bits, nblocks, a.experts, a.prefix, a.counts);
    check_launch("mask_scan_kernel");
  } else {
    check_cuda(cudaMemsetAsync(a.counts, 0, sizeof(int32_t) * a.experts, s), "memset counts");
  }
  mask_base_kernel<<<1, 32, 0, s>>>(a.counts, a.experts, a.base, a.status);
  check_launch("mask_base_kernel");
  if (a.num_tokens > 0) {
    mask_map_kernel<<<te::warp_grid(a.num_tokens), te::kThreads, 0, s>>>(a);
    check_launch("mask_map_kernel");
  }
}

void launch_te_mask_permute_rows(const void* inp, int64_t num_tokens, int64_t row_bytes, const int32_t* row_id_map,
                                 int32_t experts, const float* probs, const int32_t* pad_offsets, void* out,
                                 float* permuted_probs, cudaStream_t s) {
  if (num_tokens == 0) return;
  switch (te::vector_bytes(row_bytes, inp, out)) {
    case 16: permute_rows<uint4>(inp, num_tokens, row_bytes, row_id_map, experts, probs, pad_offsets, out, permuted_probs, s); break;
    case 8: permute_rows<uint2>(inp, num_tokens, row_bytes, row_id_map, experts, probs, pad_offsets, out, permuted_probs, s); break;
    case 4: permute_rows<uint32_t>(inp, num_tokens, row_bytes, row_id_map, experts, probs, pad_offsets, out, permuted_probs, s); break;
    case 2: permute_rows<uint16_t>(inp, num_tokens, row_bytes, row_id_map, experts, probs, pad_offsets, out, permuted_probs, s); break;
    default: permute_rows<uint8_t>(inp, num_tokens, row_bytes, row_id_map, experts, probs, pad_offsets, out, permuted_probs, s); break;
  }
  check_launch("mask_permute_rows_kernel");
}

void launch_te_mask_zero_padding(int64_t row_bytes, const int32_t* pad_start, const int32_t* pad_count, int32_t experts,
                                 void* out, float* permuted_probs, cudaStream_t s) {
  switch (te::vector_bytes(row_bytes, out, out)) {
    case 16: zero_padding<uint4>(row_bytes, pad_start, pad_count, experts, out, permuted_probs, s); break;
    case 8: zero_padding<uint2>(row_bytes, pad_start, pad_count, experts, out, permuted_probs, s); break;
    case 4: zero_padding<uint32_t>(row_bytes, pad_start, pad_count, experts, out, permuted_probs, s); break;
    case 2: zero_padding<uint16_t>(row_bytes, pad_start, pad_count, experts, out, permuted_probs, s); break;
    default: zero_padding<uint8_t>(row_bytes, pad_start, pad_count, experts, out, permuted_probs, s); break;
  }
  check_launch("mask_zero_padding_kernel");
}

void launch_te_mask_unpermute(bool bf16, const void* inp, int64_t num_rows, int64_t hidden, const int32_t* row_id_map,
                              int32_t experts, const float* merging_probs, int64_t num_tokens, const int32_t* pad_offsets,
                              void* out, int32_t* bad, cudaStream_t s) {
  if (num_tokens == 0) return;  // hidden == 0 still validates the map
  const bool wide = te::vector_bytes(hidden * (bf16 ? 2 : 4), inp, out) == 16;
  if (bf16) {
    if (wide) {
      unpermute_typed<uint16_t, 8>(inp, num_rows, hidden, row_id_map, experts, merging_probs, num_tokens, pad_offsets, out, bad, s);
    } else {
      unpermute_typed<uint16_t, 1>(inp, num_rows, hidden, row_id_map, experts, merging_probs, num_tokens, pad_offsets, out, bad, s);
    }
  } else if (wide) {
    unpermute_typed<float, 4>(inp, num_rows, hidden, row_id_map, experts, merging_probs, num_tokens, pad_offsets, out, bad, s);
  } else {
    unpermute_typed<float, 1>(inp, num_rows, hidden, row_id_map, experts, merging_probs, num_tokens, pad_offsets, out, bad, s);
  }
  check_launch("mask_unpermute_kernel");
}

}  // namespace moespark
