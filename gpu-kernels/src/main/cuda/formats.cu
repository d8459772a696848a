// Bulk number-format kernels: elementwise conversions and the block-scaled formats (NVFP4, MX,
// block FP8). Bit-exact twins of org.moespark.formats; the per-element codecs live in formats.cuh.
// Grid-stride loops with 64-bit indices; nothing here allocates.
#include "formats.cuh"

namespace moespark {
namespace fmt {
namespace {

constexpr int kThreads = 256;

// Enough blocks to fill an H100 several times over; grid-stride loops cover the rest.
unsigned grid_for(int64_t work) {
  int64_t blocks = (work + kThreads - 1) / kThreads;
  if (blocks < 1) blocks = 1;
  if (blocks > 65536) blocks = 65536;
  return static_cast<unsigned>(blocks);
}

__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

template <int C>
__device__ __forceinline__ uint8_t encode_byte(float x) {
  if (C == kE4m3Sat) return e4m3_encode_sat(x);
  if (C == kE4m3Torch) return e4m3_encode_torch(x);
  if (C == kE5m2Sat) return e5m2_encode_sat(x);
  if (C == kE5m2Torch) return e5m2_encode_torch(x);
  return e8m0_encode_torch(x);
}

template <int C>
__global__ void encode_u16_kernel(const float* __restrict__ src, uint16_t* __restrict__ dst, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    dst[i] = C == kBf16 ? bf16_encode(src[i]) : fp16_encode(src[i]);
  }
}

template <int C>
__global__ void encode_u8_kernel(const float* __restrict__ src, uint8_t* __restrict__ dst, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) dst[i] = encode_byte<C>(src[i]);
}

__global__ void encode_e2m1_kernel(const float* __restrict__ src, uint8_t* __restrict__ dst, int64_t n) {
  const int64_t bytes = (n + 1) / 2;
  for (int64_t b = first_index(); b < bytes; b += grid_stride()) {
    uint32_t lo = e2m1_encode(src[2 * b]);
    uint32_t hi = 2 * b + 1 < n ? e2m1_encode(src[2 * b + 1]) : 0u;
    dst[b] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

template <int C>
__global__ void decode_u16_kernel(const uint16_t* __restrict__ src, float* __restrict__ dst, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    dst[i] = C == kBf16 ? bf16_decode(src[i]) : fp16_decode(src[i]);
  }
}

template <int C>
__global__ void decode_u8_kernel(const uint8_t* __restrict__ src, float* __restrict__ dst, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    uint8_t c = src[i];
    dst[i] = C == kE4m3Sat ? e4m3_decode(c) : C == kE5m2Sat ? e5m2_decode(c) : e8m0_decode(c);
  }
}

__global__ void decode_e2m1_kernel(const uint8_t* __restrict__ src, float* __restrict__ dst, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    uint32_t b = src[i >> 1];
    dst[i] = e2m1_decode((i & 1) ? b >> 4 : b);
  }
}

// One thread per 16-element block.
__global__ void nvfp4_quantize_kernel(const float* __restrict__ x, int64_t blocks, float g,
                                      uint8_t* __restrict__ packed, uint8_t* __restrict__ scales) {
  for (int64_t blk = first_index(); blk < blocks; blk += grid_stride()) {
    const float* v = x + blk * 16;
    float amax = 0.0f;
    for (int j = 0; j < 16; j++) amax = abs_max(amax, v[j]);
    uint8_t sc = nvfp4_block_scale(amax, g);
    scales[blk] = sc;
    float divisor = mul_rn(e4m3_decode(sc), g);
    for (int j = 0; j < 16; j += 2) {
      uint32_t lo = divisor == 0.0f ? 0u : e2m1_encode(div_rn(v[j], divisor));
      uint32_t hi = divisor == 0.0f ? 0u : e2m1_encode(div_rn(v[j + 1], divisor));
      packed[blk * 8 + j / 2] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

__global__ void nvfp4_dequantize_kernel(const uint8_t* __restrict__ packed, const uint8_t* __restrict__ scales,
                                        float g, int64_t n, float* __restrict__ out) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    uint32_t b = packed[i >> 1];
    float lut = e2m1_decode((i & 1) ? b >> 4 : b);
    out[i] = canonical_nan(mul_rn(mul_rn(lut, e4m3_decode(scales[i / 16])), g));
  }
}

template <int K>
__device__ __forceinline__ uint32_t mx_encode(float x) {
  if (K == kMxfp4) return e2m1_encode(x);
  if (K == kMxfp8E4m3) return e4m3_encode_sat(x);
  return e5m2_encode_sat(x);
}

template <int K>
__device__ __forceinline__ float mx_decode(uint32_t c) {
  if (K == kMxfp4) return e2m1_decode(c);
  if (K == kMxfp8E4m3) return e4m3_decode(static_cast<uint8_t>(c));
  return e5m2_decode(static_cast<uint8_t>(c));
}

// One thread per 32-element block.
template <int K>
__global__ void mx_quantize_kernel(const float* __restrict__ x, int64_t blocks, uint8_t* __restrict__ elements,
                                   uint8_t* __restrict__ scales) {
  constexpr int emax = K == kMxfp4 ? 2 : K == kMxfp8E4m3 ? 8 : 15;
  for (int64_t blk = first_index(); blk < blocks; blk += grid_stride()) {
    const float* v = x + blk * 32;
    float amax = 0.0f;
    bool non_finite = false;
    for (int j = 0; j < 32; j++) {
      non_finite |= (f2u(v[j]) & 0x7FFFFFFFu) >= 0x7F800000u;
      amax = abs_max(amax, v[j]);
    }
    uint8_t sc = mx_shared_scale(emax, non_finite ? u2f(0x7FC00000u) : amax);
    scales[blk] = sc;
    float inv = sc == 0xFF ? u2f(0x7FC00000u) : pow2f(127 - static_cast<int>(sc));
    if (K == kMxfp4) {
      for (int j = 0; j < 32; j += 2) {
        uint32_t lo = mx_encode<K>(mul_rn(v[j], inv));
        uint32_t hi = mx_encode<K>(mul_rn(v[j + 1], inv));
        elements[blk * 16 + j / 2] = static_cast<uint8_t>(lo | (hi << 4));
      }
    } else {
      for (int j = 0; j < 32; j++) elements[blk * 32 + j] = static_cast<uint8_t>(mx_encode<K>(mul_rn(v[j], inv)));
    }
  }
}

template <int K>
__global__ void mx_dequantize_kernel(const uint8_t* __restrict__ elements, const uint8_t* __restrict__ scales,
                                     int64_t n, float* __restrict__ out) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    uint32_t c;
    if (K == kMxfp4) {
      uint32_t b = elements[i >> 1];
      c = (i & 1) ? b >> 4 : b & 0xFu;
    } else {
      c = elements[i];
    }
    out[i] = canonical_nan(mul_rn(mx_decode<K>(c), e8m0_decode(scales[i / 32])));
  }
}

// One CUDA block per tile (grid-stride over tiles): amax by a shared-memory max reduction (exact and
// order-independent), then every thread quantizes its share of the tile.
template <int R>
__global__ void block_fp8_quantize_kernel(const float* __restrict__ x, int64_t rows, int64_t cols, int br, int bc,
                                          bool pow2, uint8_t* __restrict__ q, float* __restrict__ scale_inv) {
  __shared__ float red[kThreads];
  __shared__ float s_shared;
  const int64_t sr = (rows + br - 1) / br;
  const int64_t sc = (cols + bc - 1) / bc;
  const int64_t tiles = sr * sc;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t r0 = (t / sc) * br;
    const int64_t c0 = (t % sc) * bc;
    const int64_t h = rows - r0 < br ? rows - r0 : br;
    const int64_t w = cols - c0 < bc ? cols - c0 : bc;
    const int64_t count = h * w;
    float amax = 0.0f;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
      amax = abs_max(amax, x[(r0 + k / w) * cols + c0 + k % w]);
    }
    red[threadIdx.x] = amax;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
      if (threadIdx.x < stride) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + stride]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (R == kRulePaddle) {
        float s = fp8_quant_scale(red[0], pow2);
        s_shared = s;
        scale_inv[t] = rcp_rn(s);
      } else {
        float s = fp8_deepseek_scale(red[0], pow2);
        s_shared = s;
        scale_inv[t] = s;
      }
    }
    __syncthreads();
    const float s = s_shared;
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
      const int64_t idx = (r0 + k / w) * cols + c0 + k % w;
      q[idx] = e4m3_encode_sat(R == kRulePaddle ? mul_rn(x[idx], s) : div_rn(x[idx], s));
    }
    __syncthreads();  // red and s_shared are reused by the next tile
  }
}

__global__ void block_fp8_dequantize_kernel(const uint8_t* __restrict__ q, const float* __restrict__ scale_inv,
                                            int64_t rows, int64_t cols, int br, int bc, float* __restrict__ out) {
  const int64_t sc = (cols + bc - 1) / bc;
  const int64_t n = rows * cols;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const int64_t r = i / cols;
    const int64_t c = i % cols;
    out[i] = canonical_nan(mul_rn(e4m3_decode(q[i]), scale_inv[(r / br) * sc + c / bc]));
  }
}

}  // namespace

bool launch_encode(int codec, const float* src, void* dst, int64_t n, cudaStream_t stream) {
  if (n == 0) return true;
  const unsigned g = grid_for(n);
  uint8_t* d8 = static_cast<uint8_t*>(dst);
  switch (codec) {
    case kBf16: encode_u16_kernel<kBf16><<<g, kThreads, 0, stream>>>(src, static_cast<uint16_t*>(dst), n); return true;
    case kFp16: encode_u16_kernel<kFp16><<<g, kThreads, 0, stream>>>(src, static_cast<uint16_t*>(dst), n); return true;
    case kE4m3Sat: encode_u8_kernel<kE4m3Sat><<<g, kThreads, 0, stream>>>(src, d8, n); return true;
    case kE4m3Torch: encode_u8_kernel<kE4m3Torch><<<g, kThreads, 0, stream>>>(src, d8, n); return true;
    case kE5m2Sat: encode_u8_kernel<kE5m2Sat><<<g, kThreads, 0, stream>>>(src, d8, n); return true;
    case kE5m2Torch: encode_u8_kernel<kE5m2Torch><<<g, kThreads, 0, stream>>>(src, d8, n); return true;
    case kE2m1: encode_e2m1_kernel<<<grid_for((n + 1) / 2), kThreads, 0, stream>>>(src, d8, n); return true;
    case kE8m0Torch: encode_u8_kernel<kE8m0Torch><<<g, kThreads, 0, stream>>>(src, d8, n); return true;
    default: return false;
  }
}

bool launch_decode(int codec, const void* src, float* dst, int64_t n, cudaStream_t stream) {
  if (n == 0) return true;
  const unsigned g = grid_for(n);
  const uint8_t* s8 = static_cast<const uint8_t*>(src);
  switch (codec) {
    case kBf16: decode_u16_kernel<kBf16><<<g, kThreads, 0, stream>>>(static_cast<const uint16_t*>(src), dst, n); return true;
    case kFp16: decode_u16_kernel<kFp16><<<g, kThreads, 0, stream>>>(static_cast<const uint16_t*>(src), dst, n); return true;
    case kE4m3Sat:
    case kE4m3Torch: decode_u8_kernel<kE4m3Sat><<<g, kThreads, 0, stream>>>(s8, dst, n); return true;
    case kE5m2Sat:
    case kE5m2Torch: decode_u8_kernel<kE5m2Sat><<<g, kThreads, 0, stream>>>(s8, dst, n); return true;
    case kE2m1: decode_e2m1_kernel<<<g, kThreads, 0, stream>>>(s8, dst, n); return true;
    case kE8m0Torch: decode_u8_kernel<kE8m0Torch><<<g, kThreads, 0, stream>>>(s8, dst, n); return true;
    default: return false;
  }
}

void launch_nvfp4_quantize(const float* x, int64_t n, float global_scale, uint8_t* packed, uint8_t* scales,
                           cudaStream_t stream) {
  const int64_t blocks = n / 16;
  if (blocks == 0) return;
  nvfp4_quantize_kernel<<<grid_for(blocks), kThreads, 0, stream>>>(x, blocks, global_scale, packed, scales);
}

void launch_nvfp4_dequantize(const uint8_t* packed, const uint8_t* scales, float global_scale, int64_t n, float* out,
                             cudaStream_t stream) {
  if (n == 0) return;
  nvfp4_dequantize_kernel<<<grid_for(n), kThreads, 0, stream>>>(packed, scales, global_scale, n, out);
}

bool launch_mx_quantize(int kind, const float* x, int64_t n, uint8_t* elements, uint8_t* scales, cudaStream_t stream) {
  const int64_t blocks = n / 32;
  const unsigned g = grid_for(blocks);
  switch (kind) {
    case kMxfp4: if (blocks) mx_quantize_kernel<kMxfp4><<<g, kThreads, 0, stream>>>(x, blocks, elements, scales); return true;
    case kMxfp8E4m3: if (blocks) mx_quantize_kernel<kMxfp8E4m3><<<g, kThreads, 0, stream>>>(x, blocks, elements, scales); return true;
    case kMxfp8E5m2: if (blocks) mx_quantize_kernel<kMxfp8E5m2><<<g, kThreads, 0, stream>>>(x, blocks, elements, scales); return true;
    default: return false;
  }
}

bool launch_mx_dequantize(int kind, const uint8_t* elements, const uint8_t* scales, int64_t n, float* out,
                          cudaStream_t stream) {
  const unsigned g = grid_for(n);
  switch (kind) {
    case kMxfp4: if (n) mx_dequantize_kernel<kMxfp4><<<g, kThreads, 0, stream>>>(elements, scales, n, out); return true;
    case kMxfp8E4m3: if (n) mx_dequantize_kernel<kMxfp8E4m3><<<g, kThreads, 0, stream>>>(elements, scales, n, out); return true;
    case kMxfp8E5m2: if (n) mx_dequantize_kernel<kMxfp8E5m2><<<g, kThreads, 0, stream>>>(elements, scales, n, out); return true;
    default: return false;
  }
}

bool launch_block_fp8_quantize(int rule, const float* x, int64_t rows, int64_t cols, int block_rows, int block_cols,
                               bool pow2, uint8_t* q, float* scale_inv, cudaStream_t stream) {
  if (rule != kRulePaddle && rule != kRuleDeepSeek) return false;
  if (rows == 0 || cols == 0) return true;
  const int64_t tiles = ((rows + block_rows - 1) / block_rows) * ((cols + block_cols - 1) / block_cols);
  const unsigned g = static_cast<unsigned>(tiles < 65536 ? tiles : 65536);
  if (rule == kRulePaddle) {
    block_fp8_quantize_kernel<kRulePaddle><<<g, kThreads, 0, stream>>>(x, rows, cols, block_rows, block_cols, pow2, q,
                                                                      scale_inv);
  } else {
    block_fp8_quantize_kernel<kRuleDeepSeek><<<g, kThreads, 0, stream>>>(x, rows, cols, block_rows, block_cols, pow2,
                                                                        q, scale_inv);
  }
  return true;
}

void launch_block_fp8_dequantize(const uint8_t* q, const float* scale_inv, int64_t rows, int64_t cols, int block_rows,
                                 int block_cols, float* out, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  block_fp8_dequantize_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(q, scale_inv, rows, cols, block_rows,
                                                                              block_cols, out);
}

}  // namespace fmt
}  // namespace moespark
