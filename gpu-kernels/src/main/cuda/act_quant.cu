// FP8 1x128 activation quantization; see act_quant.cuh.
#include "act_quant.cuh"

#include <cuda_fp8.h>

#include "formats.cuh"

namespace moespark {
namespace {

constexpr int kGroup = 128;                 // columns per scale
constexpr int kPerThread = 8;               // elements per thread
constexpr int kLanes = kGroup / kPerThread; // 16 threads per group
constexpr int kThreads = 256;               // 16 groups per block

// Two e4m3 codes (a in the low byte) by the hardware conversion: round to nearest even, saturating to ±448,
// NaN → 0x7F — fmt::e4m3_encode_sat's definition (CUDA's __NV_SATFINITE), one instruction for the pair.
__device__ __forceinline__ uint32_t e4m3x2_sat(float a, float b) {
  return static_cast<uint32_t>(__nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ void load8(const float* p, bool vec, int n, float (&v)[kPerThread]) {
  if (vec) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) v[i] = i < n ? __ldg(p + i) : 0.0f;
  }
}

__device__ __forceinline__ void load8(const uint16_t* p, bool vec, int n, float (&v)[kPerThread]) {
  if (vec) {
    fmt::bf16x8_decode(__ldg(reinterpret_cast<const uint4*>(p)), v);
  } else {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) v[i] = i < n ? fmt::bf16_decode(__ldg(p + i)) : 0.0f;
  }
}

// One 128-column group per 16 threads (a half warp); grid-stride over groups.
template <typename T, int R, bool VEC>
__global__ void __launch_bounds__(kThreads) act_quant_kernel(const T* __restrict__ x, int64_t rows, int64_t cols,
                                                             bool pow2, uint8_t* __restrict__ q,
                                                             float* __restrict__ scales) {
  const int64_t groups_per_row = (cols + kGroup - 1) / kGroup;
  const int64_t groups = rows * groups_per_row;
  const int lane = threadIdx.x % kLanes;
  const int64_t first = (static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x) / kLanes;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * (kThreads / kLanes);
  // The 16 lanes of a half warp share g, so they iterate together; the shuffles below name only
  // that half warp's lanes, so the other half may leave the loop earlier.
  for (int64_t g = first; g < groups; g += stride) {
    const int64_t r = g / groups_per_row;
    const int64_t c = (g % groups_per_row) * kGroup + lane * kPerThread;
    const int64_t off = r * cols + c;
    const int n = c >= cols ? 0 : (cols - c < kPerThread ? static_cast<int>(cols - c) : kPerThread);
    float v[kPerThread];
    if (n == kPerThread && VEC) {
      load8(x + off, true, n, v);
    } else {
      load8(x + off, false, n, v);
    }
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) amax = fmt::abs_max(amax, v[i]);  // padding is 0: no effect
    const unsigned mask = 0xffffu << (threadIdx.x & 16);
#pragma unroll
    for (int o = kLanes / 2; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(mask, amax, o, kLanes));
    uint8_t out[kPerThread];
    if (R == 0) {
      const float s = fmt::fp8_quant_scale(amax, pow2);
#pragma unroll
      for (int i = 0; i < kPerThread; i += 2) {
        const uint32_t two = e4m3x2_sat(fmt::mul_rn(v[i], s), fmt::mul_rn(v[i + 1], s));
        out[i] = static_cast<uint8_t>(two);
        out[i + 1] = static_cast<uint8_t>(two >> 8);
      }
      if (lane == 0) scales[g] = fmt::rcp_rn(s);
    } else {
      const float s = fmt::fp8_deepseek_scale(amax, pow2);
#pragma unroll
      for (int i = 0; i < kPerThread; i += 2) {
        const uint32_t two = e4m3x2_sat(fmt::div_rn(v[i], s), fmt::div_rn(v[i + 1], s));
        out[i] = static_cast<uint8_t>(two);
        out[i + 1] = static_cast<uint8_t>(two >> 8);
      }
      if (lane == 0) scales[g] = s;
    }
    if (n == kPerThread && VEC) {
      uint2 w;
      w.x = out[0] | (out[1] << 8) | (out[2] << 16) | (static_cast<uint32_t>(out[3]) << 24);
      w.y = out[4] | (out[5] << 8) | (out[6] << 16) | (static_cast<uint32_t>(out[7]) << 24);
      *reinterpret_cast<uint2*>(q + off) = w;
    } else {
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
        if (i < n) q[off + i] = out[i];
      }
    }
  }
}

template <typename T, int R>
void launch_rule(const T* x, int64_t rows, int64_t cols, bool pow2, uint8_t* q, float* scales, bool vec,
                 cudaStream_t stream) {
  const int64_t groups = rows * ((cols + kGroup - 1) / kGroup);
  int64_t blocks = (groups + kThreads / kLanes - 1) / (kThreads / kLanes);
  if (blocks > (int64_t{1} << 20)) blocks = int64_t{1} << 20;
  const unsigned grid = static_cast<unsigned>(blocks);
  if (vec) {
    act_quant_kernel<T, R, true><<<grid, kThreads, 0, stream>>>(x, rows, cols, pow2, q, scales);
  } else {
    act_quant_kernel<T, R, false><<<grid, kThreads, 0, stream>>>(x, rows, cols, pow2, q, scales);
  }
}

}  // namespace

bool launch_act_quant_1x128(int rule, bool bf16, const void* x, int64_t rows, int64_t cols, bool pow2, uint8_t* q,
                            float* scales, cudaStream_t stream) {
  if (rule != fmt::kRulePaddle && rule != fmt::kRuleDeepSeek) return false;
  if (rows == 0 || cols == 0) return true;
  // Vector path: every row starts 16-byte aligned for the loads (8 elements) and 8-byte aligned for
  // the stores, i.e. cols % 8 == 0 and aligned base pointers.
  const bool vec = cols % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(q) % 8 == 0;
  if (bf16) {
    const uint16_t* xb = static_cast<const uint16_t*>(x);
    if (rule == fmt::kRulePaddle) launch_rule<uint16_t, 0>(xb, rows, cols, pow2, q, scales, vec, stream);
    else launch_rule<uint16_t, 1>(xb, rows, cols, pow2, q, scales, vec, stream);
  } else {
    const float* xf = static_cast<const float*>(x);
    if (rule == fmt::kRulePaddle) launch_rule<float, 0>(xf, rows, cols, pow2, q, scales, vec, stream);
    else launch_rule<float, 1>(xf, rows, cols, pow2, q, scales, vec, stream);
  }
  return true;
}

}  // namespace moespark
