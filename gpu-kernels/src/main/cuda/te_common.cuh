// Device helpers shared by the TransformerEngine-twin kernels (te_permute.cu, te_mask_permute.cu,
// te_sort_chunks.cu): row vectors, warp-per-row grid strides, fp32/bf16 element access. Header only;
// kernels never allocate and never include jni.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "formats.cuh"

namespace moespark {
namespace te {

constexpr int kThreads = 256;                // 8 warps per block
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int kMaxGrid = 132 * 32;           // grid-stride beyond this (H100: 132 SMs)

// Blocks for one warp per item, capped (the kernels grid-stride over items).
inline int warp_grid(int64_t items) {
  const int64_t b = (items + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return static_cast<int>(b < 1 ? 1 : (b > kMaxGrid ? kMaxGrid : b));
}

inline int thread_grid(int64_t items) {
  const int64_t b = (items + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > kMaxGrid ? kMaxGrid : b));
}

// n elements of type T moved as one aligned unit (16 bytes for Pack<float,4> / Pack<uint16_t,8>).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Widest vector (16, 8, 4, 2 or 1 bytes) dividing row_bytes and both addresses.
inline int vector_bytes(int64_t row_bytes, const void* a, const void* b) {
  const uintptr_t m = reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) | static_cast<uintptr_t>(row_bytes);
  for (int w = 16; w > 1; w >>= 1) {
    if (m % w == 0) return w;
  }
  return 1;
}

__device__ __forceinline__ int64_t warp_id() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
}
__device__ __forceinline__ int64_t warp_count() { return (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5; }
__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x & 31); }

// Element i of a pack as fp32 (bf16 bits are widened exactly).
template <typename T>
__device__ __forceinline__ float to_f32(T x);
template <>
__device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_f32<uint16_t>(uint16_t x) { return fmt::bf16_decode(x); }

// fp32 back to the token type: bf16 rounds to nearest even (org.moespark.formats.Bf16.encode).
template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ uint16_t from_f32<uint16_t>(float x) { return fmt::bf16_encode(x); }

// IEEE round-to-nearest add / multiply that nvcc may not contract into an FMA (the CPU reference
// rounds the product and the sum separately).
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }

// One bf16 operation = the fp32 result rounded to bf16 (TE's compute-in-input-dtype path).
__device__ __forceinline__ float round_bf16(float x) { return fmt::bf16_decode(fmt::bf16_encode(x)); }

}  // namespace te
}  // namespace moespark
