// fused_transpose_split_quant kernels; see fused_transpose_split_quant.cuh.
#include "fused_transpose_split_quant.cuh"

#include "formats.cuh"

namespace moespark {
namespace {

constexpr int kTile = 128;            // tokens and columns per tile
constexpr int kColsPerThread = 4;     // 32 lanes x 4 = 128 columns
constexpr int kRowsPerThread = 16;    // 8 warps x 16 = 128 tokens
constexpr int kThreads = 256;

// Element (row, col) of the input as the bf16-valued fp32 the quantization sees.
template <bool FP8>
__device__ __forceinline__ void load4(const void* x, const float* in_scales, int64_t row, int64_t col, int64_t k,
                                      int64_t sck, int ncols, bool vec, float (&v)[kColsPerThread]) {
  if (FP8) {
    const uint8_t* p = static_cast<const uint8_t*>(x) + row * k + col;
    const float sc = ncols > 0 ? __ldg(in_scales + row * sck + col / kTile) : 0.0f;
    uint8_t b[kColsPerThread] = {0, 0, 0, 0};
    if (vec && ncols == kColsPerThread) {
      const uint32_t w = __ldg(reinterpret_cast<const uint32_t*>(p));
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j) b[j] = static_cast<uint8_t>(w >> (8 * j));
    } else {
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j) b[j] = j < ncols ? __ldg(p + j) : 0;
    }
#pragma unroll
    for (int j = 0; j < kColsPerThread; ++j) {
      v[j] = j < ncols ? fmt::bf16_decode(fmt::bf16_encode(fmt::mul_rn(fmt::e4m3_decode(b[j]), sc))) : 0.0f;
    }
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(x) + row * k + col;
    if (vec && ncols == kColsPerThread) {
      const uint2 w = __ldg(reinterpret_cast<const uint2*>(p));
      v[0] = __uint_as_float(w.x << 16);
      v[1] = __uint_as_float(w.x & 0xffff0000u);
      v[2] = __uint_as_float(w.y << 16);
      v[3] = __uint_as_float(w.y & 0xffff0000u);
    } else {
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j) v[j] = j < ncols ? fmt::bf16_decode(__ldg(p + j)) : 0.0f;
    }
  }
}

// The tile's E4M3 bytes, transposed: column c's 128 tokens are 8 chunks of 16 bytes; chunk p of
// column c lives at c * 128 + ((p ^ ((c >> 2) & 7)) * 16). The XOR swizzle makes both the 16-byte
// writes (8 lanes = 8 columns 4 apart, same p) and the 16-byte reads (8 lanes = 8 chunks of one
// column) hit 8 different bank groups.
__device__ __forceinline__ int chunk_offset(int c, int p) { return c * kTile + ((p ^ ((c >> 2) & 7)) << 4); }

template <bool FP8>
__global__ void __launch_bounds__(kThreads, 3) ftsq_kernel(const void* __restrict__ x, const float* __restrict__ in_scales,
                                                       int64_t k, FtsqExperts ex, int32_t num_experts, bool pow2,
                                                       bool vec, bool aligned_out, uint8_t* __restrict__ out,
                                                       float* __restrict__ scales) {
  __shared__ float red[kThreads / 32][kTile];
  __shared__ __align__(16) uint8_t tile[kTile * kTile];
  const int b = blockIdx.x;  // global 128-token block
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  // The expert of block b: the last e with block_start[e] <= b (it is non-empty).
  int lo = 0, hi = num_experts - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (ex.block_start[mid] <= b) lo = mid; else hi = mid - 1;
  }
  const int64_t start = static_cast<int64_t>(ex.block_start[lo]) * kTile;
  const int64_t n_e = static_cast<int64_t>(ex.block_start[lo + 1] - ex.block_start[lo]) * kTile;
  const int64_t c0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t col = c0 + lane * kColsPerThread;
  const int ncols = col >= k ? 0 : (k - col < kColsPerThread ? static_cast<int>(k - col) : kColsPerThread);
  const int64_t row0 = static_cast<int64_t>(b) * kTile + warp * kRowsPerThread;
  const int64_t sck = (k + kTile - 1) / kTile;

  // Values are bf16 (the FP8 path rounds to bf16 first), kept as bf16 bits: half the registers.
  uint32_t pk[kRowsPerThread][kColsPerThread / 2];
  float amax[kColsPerThread] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) {
    float v[kColsPerThread];
    load4<FP8>(x, in_scales, row0 + r, col, k, sck, ncols, vec, v);
#pragma unroll
    for (int j = 0; j < kColsPerThread; ++j) amax[j] = fmt::abs_max(amax[j], v[j]);  // NaN ignored
    pk[r][0] = (__float_as_uint(v[0]) >> 16) | (__float_as_uint(v[1]) & 0xffff0000u);
    pk[r][1] = (__float_as_uint(v[2]) >> 16) | (__float_as_uint(v[3]) & 0xffff0000u);
  }
#pragma unroll
  for (int j = 0; j < kColsPerThread; ++j) red[warp][lane * kColsPerThread + j] = amax[j];
  __syncthreads();
  float s[kColsPerThread];
#pragma unroll
  for (int j = 0; j < kColsPerThread; ++j) {
    float a = red[0][lane * kColsPerThread + j];
#pragma unroll
    for (int w = 1; w < kThreads / 32; ++w) a = fmaxf(a, red[w][lane * kColsPerThread + j]);
    s[j] = fmt::fp8_quant_scale(a, pow2);
  }
  if (warp == 0) {
#pragma unroll
    for (int j = 0; j < kColsPerThread; ++j) {
      if (j < ncols) scales[static_cast<int64_t>(b) * k + col + j] = fmt::rcp_rn(s[j]);
    }
  }
  // Quantize: column lane*4+j, tokens warp*16 .. +15 = chunk `warp` of that column, into shared memory.
#pragma unroll
  for (int j = 0; j < kColsPerThread; ++j) {
    uint32_t w[4] = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const uint32_t bits = (j & 1) ? (pk[r][j / 2] & 0xffff0000u) : (pk[r][j / 2] << 16);
      w[r / 4] |= static_cast<uint32_t>(fmt::e4m3_encode_sat(fmt::mul_rn(__uint_as_float(bits), s[j]))) << (8 * (r % 4));
    }
    *reinterpret_cast<uint4*>(tile + chunk_offset(lane * kColsPerThread + j, warp)) = make_uint4(w[0], w[1], w[2], w[3]);
  }
  __syncthreads();
  // Write out: 128 columns x 8 chunks; a warp stores 4 whole 128-byte column rows per instruction.
  const int64_t base = k * start + (static_cast<int64_t>(b) * kTile - start);
#pragma unroll
  for (int it = 0; it < kTile * kTile / 16 / kThreads; ++it) {
    const int chunk = it * kThreads + threadIdx.x;
    const int c = chunk / 8;
    const int p = chunk % 8;
    if (c0 + c < k) {
      const uint4 v = *reinterpret_cast<const uint4*>(tile + chunk_offset(c, p));
      uint8_t* dst = out + base + (c0 + c) * n_e + p * 16;
      if (aligned_out) {
        *reinterpret_cast<uint4*>(dst) = v;
      } else {
        const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int r = 0; r < 16; ++r) dst[r] = static_cast<uint8_t>(w[r / 4] >> (8 * (r % 4)));
      }
    }
  }
}

}  // namespace

void launch_fused_transpose_split_quant(const void* x, bool fp8, const float* in_scales, int64_t m, int64_t k,
                                        const FtsqExperts& experts, int32_t num_experts, bool pow2, uint8_t* out,
                                        float* scales, cudaStream_t stream) {
  if (m == 0 || k == 0 || num_experts == 0) return;
  const dim3 grid(static_cast<unsigned>(m / kTile), static_cast<unsigned>((k + kTile - 1) / kTile));
  const bool vec = k % kColsPerThread == 0 && reinterpret_cast<uintptr_t>(x) % (fp8 ? 4 : 8) == 0;
  const bool aligned_out = reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (fp8) {
    ftsq_kernel<true><<<grid, kThreads, 0, stream>>>(x, in_scales, k, experts, num_experts, pow2, vec, aligned_out, out,
                                                     scales);
  } else {
    ftsq_kernel<false><<<grid, kThreads, 0, stream>>>(x, in_scales, k, experts, num_experts, pow2, vec, aligned_out,
                                                      out, scales);
  }
}

}  // namespace moespark
