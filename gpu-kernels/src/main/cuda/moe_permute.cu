// Paddle-semantics moe_permute / moe_unpermute kernels; see moe_permute.cuh.
#include "moe_permute.cuh"

#include <climits>
#include <cstring>

#include "formats.cuh"   // fmt::bf16_decode / fmt::bf16_encode (round to nearest even, NaN kept)
#include "jni_util.hpp"  // check_launch (host side only; kernels do not use JNI)

namespace moespark {
namespace {

constexpr int kTB = kPermuteTokensPerBlock;

// Per block of kTB (= 128) tokens, bit t of s_bits[e][*] says "token t0+t is routed to e". Built
// with atomicOr, whose result does not depend on thread order; ranks within the block are popcounts
// of the lower bits, i.e. ascending token order, exactly like a sequential scan.
constexpr int kWords = kTB / 32;

__device__ __forceinline__ void build_bits(const int32_t* __restrict__ route, int64_t t0, int nt, int32_t top_k,
                                           int32_t experts, uint32_t* s_bits) {
  for (int i = threadIdx.x; i < experts * kWords; i += blockDim.x) s_bits[i] = 0u;
  __syncthreads();
  for (int i = threadIdx.x; i < nt * top_k; i += blockDim.x) {
    const int32_t e = route[t0 * top_k + i];
    if (e >= 0 && e < experts) {
      const int t = i / top_k;
      atomicOr(&s_bits[e * kWords + (t >> 5)], 1u << (t & 31));
    }
  }
  __syncthreads();
}

// Number of tokens below local index t routed to e (t in [0, kTB]).
__device__ __forceinline__ int rank_below(const uint32_t* s_bits, int e, int t) {
  int r = 0;
#pragma unroll
  for (int w = 0; w < kWords; ++w) {
    const int lo = w * 32;
    const uint32_t m = t >= lo + 32 ? 0xffffffffu : (t <= lo ? 0u : ((1u << (t - lo)) - 1u));
    r += __popc(s_bits[e * kWords + w] & m);
  }
  return r;
}

// Pass 1 (+ route validation): per block of kTB tokens (one thread per token), how many valid slots
// each expert has, and the block's first token with an id outside {-1} ∪ [0, E) / naming an expert
// twice (INT32_MAX when none; a shared atomicMin over distinct token ids: order-independent).
// Block 0 also resets the pass-2 ticket (kernels on one stream run in order).
__global__ void permute_count_kernel(const int32_t* __restrict__ route, int64_t tokens, int32_t top_k, int32_t experts,
                                     int32_t* __restrict__ block_counts, int32_t* __restrict__ block_flags,
                                     unsigned* __restrict__ ticket) {
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTB;
  const int nt = static_cast<int>(tokens - t0 < kTB ? (tokens - t0 > 0 ? tokens - t0 : 0) : kTB);
  __shared__ int32_t s_bad[2];
  extern __shared__ uint32_t s_bits[];
  if (blockIdx.x == 0 && threadIdx.x == 0) *ticket = 0u;
  if (threadIdx.x < 2) s_bad[threadIdx.x] = INT32_MAX;
  build_bits(route, t0, nt, top_k, experts, s_bits);  // synchronizes, so s_bad is initialised below
  if (static_cast<int>(threadIdx.x) < nt) {
    const int32_t t = static_cast<int32_t>(t0 + threadIdx.x);
    const int32_t* r = route + (t0 + threadIdx.x) * top_k;
    for (int k = 0; k < top_k; ++k) {
      const int32_t e = r[k];
      if (e == -1) continue;
      if (e < 0 || e >= experts) atomicMin(&s_bad[0], t);
      for (int j = 0; j < k; ++j) {
        if (r[j] == e) atomicMin(&s_bad[1], t);
      }
    }
  }
  for (int e = threadIdx.x; e < experts; e += blockDim.x) {
    block_counts[static_cast<int64_t>(blockIdx.x) * experts + e] = rank_below(s_bits, e, kTB);
  }
  __syncthreads();
  if (threadIdx.x < 2) block_flags[2 * static_cast<int64_t>(blockIdx.x) + threadIdx.x] = s_bad[threadIdx.x];
}

// Pass 2: exclusive prefix over blocks, per expert (in place), and per-expert totals into
// result[3 + e]. One warp per expert: 32 blocks per step, a shuffle scan, a running carry (integer
// sums: order-independent). The last block to finish (a ticket; which block it is does not change
// any value) then reduces the validation flags into result[0..1], compares the totals with
// tokens_per_expert (result[2] = first mismatching expert), writes expert_base (exclusive prefix of
// the padded counts) and pre-fills the padding rows (source -1, expert -1, prob 0).
__global__ void permute_scan_kernel(PermuteScanArgs a, const ExpertCounts tpe) {
  const int lane = threadIdx.x & 31;
  const int e = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
  if (e < a.experts) {
    int32_t carry = 0;
    for (int b0 = 0; b0 < a.nblocks; b0 += 32) {
      const int b = b0 + lane;
      const int64_t at = static_cast<int64_t>(b) * a.experts + e;
      const int32_t c = b < a.nblocks ? a.block_counts[at] : 0;
      int32_t incl = c;
#pragma unroll
      for (int d = 1; d < 32; d <<= 1) {
        const int32_t v = __shfl_up_sync(0xffffffffu, incl, d);
        if (lane >= d) incl += v;
      }
      if (b < a.nblocks) a.block_counts[at] = carry + incl - c;
      carry += __shfl_sync(0xffffffffu, incl, 31);
    }
    if (lane == 0) a.result[3 + e] = carry;
  }
  __shared__ bool s_last;
  __shared__ int32_t s_bad[3];
  __shared__ int64_t s_base[kMaxPermuteExperts + 1];
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomicAdd(a.ticket, 1u) == gridDim.x - 1;
  if (threadIdx.x < 3) s_bad[threadIdx.x] = INT32_MAX;
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int i = threadIdx.x; i < 2 * a.nblocks; i += blockDim.x) atomicMin(&s_bad[i & 1], __ldcg(a.block_flags + i));
  // the expert counts that size the output: tokens_per_expert, or (a.counted) the routed counts themselves
  const auto count_of = [&](int x) { return a.counted ? __ldcg(a.result + 3 + x) : tpe.count[x]; };
  if (!a.counted) {
    for (int x = threadIdx.x; x < a.experts; x += blockDim.x) {
      if (__ldcg(a.result + 3 + x) != tpe.count[x]) atomicMin(&s_bad[2], x);
    }
  }
  if (threadIdx.x < 32) {  // warp 0: exclusive prefix of the padded counts, 32 experts per step
    int64_t run = 0;
    for (int x0 = 0; x0 < a.experts; x0 += 32) {
      const int x = x0 + lane;
      const int64_t v = x < a.experts ? (static_cast<int64_t>(count_of(x)) + a.align - 1) / a.align * a.align : 0;
      int64_t incl = v;
#pragma unroll
      for (int d = 1; d < 32; d <<= 1) {
        const int64_t u = __shfl_up_sync(0xffffffffu, incl, d);
        if (lane >= d) incl += u;
      }
      if (x < a.experts) {
        s_base[x] = run + incl - v;
        a.expert_base[x] = run + incl - v;
      }
      run += __shfl_sync(0xffffffffu, incl, 31);
    }
    if (lane == 0) s_base[a.experts] = run;
  }
  __syncthreads();
  if (threadIdx.x < 3) a.result[threadIdx.x] = s_bad[threadIdx.x];
  const int warp = threadIdx.x >> 5;
  const int nwarps = blockDim.x >> 5;
  for (int x = warp; x < a.experts; x += nwarps) {
    for (int64_t r = s_base[x] + count_of(x) + lane; r < s_base[x + 1]; r += 32) {
      a.src_row[r] = -1;
      if (a.expert_of_row != nullptr) a.expert_of_row[r] = -1;
      if (a.prob_out != nullptr) a.prob_out[r] = 0.f;
    }
  }
}

// Pass 3: rowmap for the block (coalesced over (t, e)), then per valid slot the row's source, prob
// and expert. Row of (t, e) = expert_base[e] + (tokens of earlier blocks routed to e) + rank in block.
__global__ void permute_assign_kernel(PermuteMapsArgs a) {
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTB;
  const int nt = static_cast<int>(a.tokens - t0 < kTB ? a.tokens - t0 : kTB);
  const int E = a.experts;
  const int K = a.top_k;
  extern __shared__ uint32_t s_bits[];
  // First row of each expert's slice for this block (fits int32: rows <= INT32_MAX is checked in Java).
  int32_t* s_first = reinterpret_cast<int32_t*>(s_bits + kWords * E);
  const int32_t* prefix = a.block_counts + static_cast<int64_t>(blockIdx.x) * E;
  for (int e = threadIdx.x; e < E; e += blockDim.x) s_first[e] = static_cast<int32_t>(a.expert_base[e] + prefix[e]);
  build_bits(a.route, t0, nt, K, E, s_bits);  // synchronizes: s_first is visible below
  for (int i = threadIdx.x; i < nt * E; i += blockDim.x) {
    const int t = i / E;
    const int e = i - t * E;
    const bool routed = (s_bits[e * kWords + (t >> 5)] >> (t & 31)) & 1u;
    a.rowmap[(t0 + t) * E + e] = routed ? s_first[e] + rank_below(s_bits, e, t) : -1;
  }
  for (int i = threadIdx.x; i < nt * K; i += blockDim.x) {
    const int t = i / K;
    const int32_t e = a.route[t0 * K + i];
    if (e < 0 || e >= E) continue;
    const int64_t row = s_first[e] + rank_below(s_bits, e, t);
    a.src_row[row] = static_cast<int32_t>(t0 + t);
    if (a.prob_out != nullptr) a.prob_out[row] = a.probs != nullptr ? a.probs[t0 * K + i] : 0.f;
    if (a.expert_of_row != nullptr) a.expert_of_row[row] = e;
  }
}

// One warp per output row; each lane keeps kUnroll 16-byte loads in flight (read-only path) and
// writes with streaming stores. Grid-stride over rows.
constexpr int kUnroll = 4;

template <typename V>
__device__ __forceinline__ V load_nc(const V* p) { return __ldg(p); }
// Streaming store (evict-first): permuted rows are written once and not read again by this kernel.
template <typename V>
__device__ __forceinline__ void store_cs(V* p, const V& v) { *p = v; }
template <>
__device__ __forceinline__ void store_cs<uint4>(uint4* p, const uint4& v) { __stcs(p, v); }
template <>
__device__ __forceinline__ uint8_t load_nc<uint8_t>(const uint8_t* p) { return *p; }

template <typename V>
__global__ void gather_rows_kernel(const V* __restrict__ src, int64_t row_vecs, const int32_t* __restrict__ src_row,
                                   int64_t rows, V* __restrict__ out, bool zero_missing) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t r = warp; r < rows; r += nwarps) {
    const int32_t s = src_row[r];
    V* o = out + r * row_vecs;
    if (s < 0) {
      if (zero_missing) {
        V z;
        memset(&z, 0, sizeof(V));
        for (int64_t c = lane; c < row_vecs; c += 32) o[c] = z;
      }
      continue;
    }
    const V* in = src + static_cast<int64_t>(s) * row_vecs;
    int64_t c = lane;
    for (; c + 32 * (kUnroll - 1) < row_vecs; c += 32 * kUnroll) {
      V v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) v[u] = load_nc(in + c + 32 * u);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) o[c + 32 * u] = v[u];
    }
    for (; c < row_vecs; c += 32) o[c] = load_nc(in + c);
  }
}

// Warp-parallel compaction of a token's rowmap row [experts]: the rows of the experts it is routed
// to, in ascending expert order, into s_rows (and each row's prob, 1 without probs, into s_prob
// unless it is nullptr). Every lane returns the count; callers __syncwarp() before reading.
__device__ __forceinline__ int warp_collect(const int32_t* __restrict__ rm, int32_t experts, int lane,
                                           const float* __restrict__ prob, int32_t* s_rows, float* s_prob) {
  int cnt = 0;
  for (int e0 = 0; e0 < experts; e0 += 32) {
    const int e = e0 + lane;
    const int32_t r = e < experts ? rm[e] : -1;
    const unsigned m = __ballot_sync(0xffffffffu, r >= 0);
    if (r >= 0) {
      const int pos = cnt + __popc(m & ((1u << lane) - 1u));
      s_rows[pos] = r;
      if (s_prob != nullptr) s_prob[pos] = prob != nullptr ? prob[r] : 1.f;
    }
    cnt += __popc(m);
  }
  return cnt;
}

// Permute data movement, read once / write k: one warp per source token loads each 16-byte chunk
// of the row once and stores it to every destination row of the token (its rowmap entries, in
// ascending expert order). Padding rows are zeroed by zero_rows_kernel.
template <typename V>
__global__ void scatter_rows_kernel(const V* __restrict__ src, int64_t row_vecs, const int32_t* __restrict__ rowmap,
                                    int64_t tokens, int32_t experts, V* __restrict__ out) {
  extern __shared__ int32_t s_dst_all[];
  const int lane = threadIdx.x & 31;
  int32_t* s_dst = s_dst_all + static_cast<int64_t>(threadIdx.x >> 5) * experts;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t t = warp; t < tokens; t += nwarps) {
    const int cnt = warp_collect(rowmap + t * experts, experts, lane, nullptr, s_dst, nullptr);
    __syncwarp();
    if (cnt > 0) {
      const V* in = src + t * row_vecs;
      int64_t c = lane;
      for (; c + 32 * (kUnroll - 1) < row_vecs; c += 32 * kUnroll) {
        V v[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) v[u] = load_nc(in + c + 32 * u);
        for (int j = 0; j < cnt; ++j) {
          V* o = out + static_cast<int64_t>(s_dst[j]) * row_vecs;
#pragma unroll
          for (int u = 0; u < kUnroll; ++u) store_cs(o + c + 32 * u, v[u]);
        }
      }
      for (; c < row_vecs; c += 32) {
        const V v = load_nc(in + c);
        for (int j = 0; j < cnt; ++j) out[static_cast<int64_t>(s_dst[j]) * row_vecs + c] = v;
      }
    }
    __syncwarp();
  }
}

// Zeroes the rows whose source is -1 (padding), one warp per row.
template <typename V>
__global__ void zero_rows_kernel(int64_t row_vecs, const int32_t* __restrict__ src_row, int64_t rows,
                                 V* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  V z;
  memset(&z, 0, sizeof(V));
  for (int64_t r = warp; r < rows; r += nwarps) {
    if (src_row[r] >= 0) continue;
    V* o = out + r * row_vecs;
    for (int64_t c = lane; c < row_vecs; c += 32) o[c] = z;
  }
}

// Scalar unpermute (rows that are not whole 16-byte vectors), one block per token: warp 0 gathers the
// contributors, then the block sums them per column in ascending expert order in fp32 (cnt == 1 and
// unweighted: the raw value; cnt == 0: +0). T is uint16_t (bf16 bits) or float.
__device__ __forceinline__ float unpermute_load(uint16_t v) { return fmt::bf16_decode(v); }
__device__ __forceinline__ float unpermute_load(float v) { return v; }
__device__ __forceinline__ void unpermute_store(uint16_t* o, float v) { *o = fmt::bf16_encode(v); }
__device__ __forceinline__ void unpermute_store(float* o, float v) { *o = v; }

template <typename T>
__global__ void unpermute_scalar_kernel(const T* __restrict__ xu, int64_t hidden, const int32_t* __restrict__ rowmap,
                                        int64_t tokens, int32_t experts, const float* __restrict__ prob, bool weighted,
                                        T* __restrict__ out) {
  extern __shared__ unsigned char smem[];
  __shared__ int s_cnt;
  int32_t* s_rows = reinterpret_cast<int32_t*>(smem);
  float* s_prob = reinterpret_cast<float*>(s_rows + experts);
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    if (threadIdx.x < 32) {
      const int c = warp_collect(rowmap + t * experts, experts, static_cast<int>(threadIdx.x), prob, s_rows, s_prob);
      if (threadIdx.x == 0) s_cnt = c;
    }
    __syncthreads();
    const int cnt = s_cnt;
    T* o = out + t * hidden;
    for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
      if (cnt == 1 && !weighted) {
        o[c] = xu[static_cast<int64_t>(s_rows[0]) * hidden + c];
      } else {
        float sum = 0.f;
        for (int j = 0; j < cnt; ++j) {
          const float x = unpermute_load(xu[static_cast<int64_t>(s_rows[j]) * hidden + c]);
          sum = weighted ? fmaf(x, s_prob[j], sum) : x + sum;
        }
        unpermute_store(o + c, sum);
      }
    }
    __syncthreads();
  }
}

// Warp-per-token unpermute on 16-byte vectors (8 bf16 or 4 fp32 per lane per step), same
// arithmetic and order as the scalar kernels: fp32 sum over contributors in ascending expert order.
template <bool kBf16>
__global__ void unpermute_vec_kernel(const uint4* __restrict__ xu, int64_t row_vecs, const int32_t* __restrict__ rowmap,
                                     int64_t tokens, int32_t experts, const float* __restrict__ prob, bool weighted,
                                     uint4* __restrict__ out) {
  constexpr int kElems = kBf16 ? 8 : 4;
  extern __shared__ unsigned char smem[];
  const int lane = threadIdx.x & 31;
  const int wib = threadIdx.x >> 5;
  int32_t* s_rows = reinterpret_cast<int32_t*>(smem) + static_cast<int64_t>(wib) * experts * 2;
  float* s_prob = reinterpret_cast<float*>(s_rows + experts);
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t t = warp; t < tokens; t += nwarps) {
    const int cnt = warp_collect(rowmap + t * experts, experts, lane, prob, s_rows, s_prob);
    __syncwarp();
    uint4* o = out + t * row_vecs;
    // Two 16-byte columns per lane per step: 2·cnt independent loads in flight.
    for (int64_t c0 = lane; c0 < row_vecs; c0 += 64) {
      const bool two = c0 + 32 < row_vecs;
      if (cnt == 1 && !weighted) {
        const uint4* in = xu + static_cast<int64_t>(s_rows[0]) * row_vecs;
        const uint4 a = __ldg(in + c0);
        const uint4 b = two ? __ldg(in + c0 + 32) : make_uint4(0, 0, 0, 0);
        o[c0] = a;
        if (two) o[c0 + 32] = b;
        continue;
      }
      if (cnt == 0) {
        o[c0] = make_uint4(0, 0, 0, 0);
        if (two) o[c0 + 32] = make_uint4(0, 0, 0, 0);
        continue;
      }
      float acc[2][kElems];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int i = 0; i < kElems; ++i) acc[h][i] = 0.f;
      }
#pragma unroll 2
      for (int j = 0; j < cnt; ++j) {
        const uint4* in = xu + static_cast<int64_t>(s_rows[j]) * row_vecs;
        const uint4 v0 = __ldg(in + c0);
        const uint4 v1 = two ? __ldg(in + c0 + 32) : make_uint4(0, 0, 0, 0);
        const float p = s_prob[j];
        const uint32_t w[2][4] = {{v0.x, v0.y, v0.z, v0.w}, {v1.x, v1.y, v1.z, v1.w}};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
#pragma unroll
          for (int i = 0; i < kElems; ++i) {
            const float x = kBf16 ? __uint_as_float((i & 1) ? (w[h][i >> 1] & 0xffff0000u) : (w[h][i >> 1] << 16))
                                  : __uint_as_float(w[h][i]);
            acc[h][i] = weighted ? fmaf(x, p, acc[h][i]) : x + acc[h][i];
          }
        }
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        if (h == 1 && !two) break;
        uint32_t r[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          r[q] = kBf16 ? (static_cast<uint32_t>(fmt::bf16_encode(acc[h][2 * q])) |
                          (static_cast<uint32_t>(fmt::bf16_encode(acc[h][2 * q + 1])) << 16))
                       : __float_as_uint(acc[h][q]);
        }
        o[c0 + 32 * h] = make_uint4(r[0], r[1], r[2], r[3]);
      }
    }
    __syncwarp();
  }
}

__global__ void unpermute_probs_kernel(const int32_t* __restrict__ route, int64_t tokens, int32_t top_k, int32_t experts,
                                       const int32_t* __restrict__ rowmap, const float* __restrict__ prob,
                                       float* __restrict__ out) {
  const int64_t n = tokens * top_k;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t e = route[i];
    const int64_t t = i / top_k;
    float p = 0.f;
    if (e >= 0 && e < experts) {
      const int32_t r = rowmap[t * experts + e];
      if (r >= 0) p = prob[r];
    }
    out[i] = p;
  }
}





int grid_for(int64_t items, int per_block_items = 1) {
  const int64_t b = (items + per_block_items - 1) / per_block_items;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 * 4 ? 65535 * 4 : b));
}

}  // namespace

void launch_permute_prepare(const PermuteScanArgs& a, const int32_t* route, int64_t tokens, int32_t top_k,
                            const ExpertCounts& tokens_per_expert, cudaStream_t stream) {
  const int nblocks = a.nblocks < 1 ? 1 : a.nblocks;  // block 0 also resets the ticket when tokens == 0
  const size_t smem = sizeof(uint32_t) * kWords * a.experts;
  permute_count_kernel<<<nblocks, kTB, smem, stream>>>(route, tokens, top_k, a.experts, a.block_counts, a.block_flags,
                                                       a.ticket);
  check_launch("permute_count_kernel");
  permute_scan_kernel<<<(a.experts * 32 + 255) / 256, 256, 0, stream>>>(a, tokens_per_expert);
  check_launch("permute_scan_kernel");
}

void launch_permute_assign(const PermuteMapsArgs& a, cudaStream_t stream) {
  if (a.tokens == 0) return;
  const int nblocks = permute_num_blocks(a.tokens);
  const size_t smem = (sizeof(uint32_t) * kWords + sizeof(int32_t)) * a.experts;
  permute_assign_kernel<<<nblocks, 4 * kTB, smem, stream>>>(a);  // 4 threads per token for the [t, E] rowmap
  check_launch("permute_assign_kernel");
}

void launch_gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, const int32_t* src_row, int64_t rows,
                        void* out, bool zero_missing, cudaStream_t stream) {
  (void)src_rows;
  if (rows == 0 || row_bytes == 0) return;
  const auto aligned = [&](int n) {
    return row_bytes % n == 0 && reinterpret_cast<uintptr_t>(src) % n == 0 && reinterpret_cast<uintptr_t>(out) % n == 0;
  };
  constexpr int kThreads = 256;
  const int64_t warps_needed = rows;
  const int64_t blocks = (warps_needed * 32 + kThreads - 1) / kThreads;
  const int grid = static_cast<int>(blocks > 132 * 64 ? 132 * 64 : blocks);
  if (aligned(16)) {
    gather_rows_kernel<uint4><<<grid, kThreads, 0, stream>>>(static_cast<const uint4*>(src), row_bytes / 16, src_row,
                                                             rows, static_cast<uint4*>(out), zero_missing);
  } else if (aligned(4)) {
    gather_rows_kernel<uint32_t><<<grid, kThreads, 0, stream>>>(static_cast<const uint32_t*>(src), row_bytes / 4,
                                                                src_row, rows, static_cast<uint32_t*>(out), zero_missing);
  } else {
    gather_rows_kernel<uint8_t><<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(src), row_bytes, src_row,
                                                               rows, static_cast<uint8_t*>(out), zero_missing);
  }
  check_launch("gather_rows_kernel");
}

void launch_scatter_rows(const void* src, int64_t row_bytes, const int32_t* rowmap, int64_t tokens, int32_t experts,
                         const int32_t* src_row, int64_t rows, void* out, cudaStream_t stream) {
  if (row_bytes == 0) return;
  constexpr int kThreads = 256;
  const size_t smem = static_cast<size_t>(kThreads / 32) * experts * sizeof(int32_t);
  const auto grid_of = [](int64_t warps) {
    const int64_t b = (warps * 32 + kThreads - 1) / kThreads;
    return static_cast<int>(b < 1 ? 1 : (b > 132 * 64 ? 132 * 64 : b));
  };
  const auto aligned = [&](int n) {
    return row_bytes % n == 0 && reinterpret_cast<uintptr_t>(src) % n == 0 && reinterpret_cast<uintptr_t>(out) % n == 0;
  };
  if (aligned(16)) {
    if (tokens > 0)
      scatter_rows_kernel<uint4><<<grid_of(tokens), kThreads, smem, stream>>>(static_cast<const uint4*>(src),
                                                                              row_bytes / 16, rowmap, tokens, experts,
                                                                              static_cast<uint4*>(out));
    if (rows > 0)
      zero_rows_kernel<uint4><<<grid_of(rows), kThreads, 0, stream>>>(row_bytes / 16, src_row, rows, static_cast<uint4*>(out));
  } else if (aligned(4)) {
    if (tokens > 0)
      scatter_rows_kernel<uint32_t><<<grid_of(tokens), kThreads, smem, stream>>>(static_cast<const uint32_t*>(src),
                                                                                 row_bytes / 4, rowmap, tokens, experts,
                                                                                 static_cast<uint32_t*>(out));
    if (rows > 0)
      zero_rows_kernel<uint32_t><<<grid_of(rows), kThreads, 0, stream>>>(row_bytes / 4, src_row, rows,
                                                                         static_cast<uint32_t*>(out));
  } else {
    if (tokens > 0)
      scatter_rows_kernel<uint8_t><<<grid_of(tokens), kThreads, smem, stream>>>(static_cast<const uint8_t*>(src), row_bytes,
                                                                                rowmap, tokens, experts,
                                                                                static_cast<uint8_t*>(out));
    if (rows > 0)
      zero_rows_kernel<uint8_t><<<grid_of(rows), kThreads, 0, stream>>>(row_bytes, src_row, rows, static_cast<uint8_t*>(out));
  }
  check_launch("scatter_rows_kernel");
}

namespace {

// Vector path when rows are whole 16-byte vectors and both pointers are 16-byte aligned.
bool launch_unpermute_vec(bool bf16, const void* xu, int64_t hidden, const int32_t* rowmap, int64_t tokens,
                          int32_t experts, const float* prob, bool weighted, void* out, cudaStream_t stream) {
  const int64_t row_bytes = hidden * (bf16 ? 2 : 4);
  if (row_bytes % 16 != 0 || reinterpret_cast<uintptr_t>(xu) % 16 != 0 || reinterpret_cast<uintptr_t>(out) % 16 != 0) {
    return false;
  }
  constexpr int kThreads = 128;  // 4 warps, one token each
  const size_t smem = static_cast<size_t>(kThreads / 32) * experts * 2 * sizeof(int32_t);
  const int64_t blocks = (tokens + kThreads / 32 - 1) / (kThreads / 32);
  const int grid = static_cast<int>(blocks > 132 * 32 ? 132 * 32 : blocks);
  if (bf16) {
    unpermute_vec_kernel<true><<<grid, kThreads, smem, stream>>>(static_cast<const uint4*>(xu), row_bytes / 16, rowmap,
                                                                 tokens, experts, prob, weighted, static_cast<uint4*>(out));
  } else {
    unpermute_vec_kernel<false><<<grid, kThreads, smem, stream>>>(static_cast<const uint4*>(xu), row_bytes / 16, rowmap,
                                                                  tokens, experts, prob, weighted, static_cast<uint4*>(out));
  }
  check_launch("unpermute_vec_kernel");
  return true;
}

}  // namespace

void launch_unpermute_bf16(const uint16_t* x_unzipped, int64_t rows, int64_t hidden, const int32_t* rowmap,
                           int64_t tokens, int32_t experts, const float* prob_unzipped, bool weighted, uint16_t* out,
                           cudaStream_t stream) {
  (void)rows;
  if (tokens == 0 || hidden == 0) return;
  if (launch_unpermute_vec(true, x_unzipped, hidden, rowmap, tokens, experts, prob_unzipped, weighted, out, stream)) return;
  const size_t smem = static_cast<size_t>(experts) * (sizeof(int32_t) + sizeof(float));
  unpermute_scalar_kernel<uint16_t><<<grid_for(tokens), 256, smem, stream>>>(x_unzipped, hidden, rowmap, tokens, experts,
                                                                  prob_unzipped, weighted, out);
  check_launch("unpermute_scalar_kernel<bf16>");
}

void launch_unpermute_f32(const float* x_unzipped, int64_t rows, int64_t hidden, const int32_t* rowmap, int64_t tokens,
                          int32_t experts, const float* prob_unzipped, bool weighted, float* out, cudaStream_t stream) {
  (void)rows;
  if (tokens == 0 || hidden == 0) return;
  if (launch_unpermute_vec(false, x_unzipped, hidden, rowmap, tokens, experts, prob_unzipped, weighted, out, stream)) return;
  const size_t smem = static_cast<size_t>(experts) * (sizeof(int32_t) + sizeof(float));
  unpermute_scalar_kernel<float><<<grid_for(tokens), 256, smem, stream>>>(x_unzipped, hidden, rowmap, tokens, experts,
                                                                 prob_unzipped, weighted, out);
  check_launch("unpermute_scalar_kernel<f32>");
}

void launch_unpermute_probs(const int32_t* route, int64_t tokens, int32_t top_k, int32_t experts, const int32_t* rowmap,
                            const float* prob_unzipped, float* out, cudaStream_t stream) {
  if (tokens == 0 || top_k == 0) return;
  unpermute_probs_kernel<<<grid_for(tokens * top_k, 256), 256, 0, stream>>>(route, tokens, top_k, experts, rowmap,
                                                                            prob_unzipped, out);
  check_launch("unpermute_probs_kernel");
}

}  // namespace moespark
