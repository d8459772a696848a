// See moe_layer.cuh.
#include "moe_layer.cuh"

#include "formats.cuh"

namespace moespark {
namespace {

constexpr int kCombineThreads = 256;

__device__ __forceinline__ float round_bf16(float x) { return fmt::bf16_decode(fmt::bf16_encode(x)); }

__device__ __forceinline__ float load_row(const void* p, int32_t is_bf16, int64_t idx) {
  return is_bf16 ? fmt::bf16_decode(static_cast<const uint16_t*>(p)[idx]) : static_cast<const float*>(p)[idx];
}

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Elements idx .. idx + 8 of a row array (bf16 or fp32), 16-byte aligned, as floats.
__device__ __forceinline__ void load8(const void* p, int32_t is_bf16, int64_t idx, float (&v)[8]) {
  if (is_bf16) {
    fmt::bf16x8_decode(*reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p) + idx), v);
  } else {
    const float4* f = reinterpret_cast<const float4*>(static_cast<const float*>(p) + idx);
    const float4 lo = f[0];
    const float4 hi = f[1];
    v[0] = lo.x;
    v[1] = lo.y;
    v[2] = lo.z;
    v[3] = lo.w;
    v[4] = hi.x;
    v[5] = hi.y;
    v[6] = hi.z;
    v[7] = hi.w;
  }
}

// One term of an output element's sum: fp32, or with Compute.BF16's roundings (the term, then the sum).
__device__ __forceinline__ float add_term(float acc, float v, int32_t bf16) {
  return bf16 ? round_bf16(__fadd_rn(acc, round_bf16(v))) : __fadd_rn(acc, v);
}

// One block per token. Every output element is one thread's fixed-order sum: deterministic.
__global__ void __launch_bounds__(kCombineThreads) moe_combine_kernel(CombineArgs a) {
  __shared__ int64_t rows[kCombineMaxTopK];
  __shared__ float w[kCombineMaxTopK];
  __shared__ float red[kCombineThreads];
  __shared__ float gate;
  const int64_t t = blockIdx.x;
  const int tid = threadIdx.x;
  const int k = a.top_k;
  if (k <= 32) {
    // the token's slots sorted by expert id (stable: ties by slot, as the insertion sort below) by their ranks,
    // one lane per slot, so the id, weight and rowmap loads of all slots are in flight together
    if (tid < 32) {
      const bool on = tid < k;
      const int id = on ? a.ids[t * k + tid] : 0;
      const float wj = on ? a.weights[t * k + tid] : 0.0f;
      int rank = 0;
      for (int q = 0; q < k; ++q) {
        const int o = __shfl_sync(0xffffffffu, id, q);
        rank += (o < id || (o == id && q < tid)) ? 1 : 0;
      }
      if (on) {
        rows[rank] = a.rowmap[t * a.experts + id];
        w[rank] = wj;
      }
    }
  } else if (tid == 0) {
    // insertion sort of the token's slots by expert id (k is small)
    int ids[kCombineMaxTopK];
    for (int j = 0; j < k; ++j) {
      int id = a.ids[t * k + j];
      float wj = a.weights[t * k + j];
      int p = j;
      while (p > 0 && ids[p - 1] > id) {
        ids[p] = ids[p - 1];
        w[p] = w[p - 1];
        --p;
      }
      ids[p] = id;
      w[p] = wj;
    }
    for (int j = 0; j < k; ++j) rows[j] = a.rowmap[t * a.experts + ids[j]];
  }
  if (a.shared_gate != nullptr) {
    float s = 0.0f;
    for (int64_t c = tid; c < a.hidden; c += kCombineThreads) {
      float xv = a.x[t * a.hidden + c];
      if (a.bf16) xv = round_bf16(xv);
      s = __fadd_rn(s, __fmul_rn(xv, a.shared_gate[c]));
    }
    red[tid] = s;
    __syncthreads();
    for (int stride = kCombineThreads / 2; stride > 0; stride >>= 1) {
      if (tid < stride) red[tid] = __fadd_rn(red[tid], red[tid + stride]);
      __syncthreads();
    }
    if (tid == 0) {
      float d = red[0];
      gate = a.bf16 ? round_bf16(1.0f / (1.0f + expf(-round_bf16(d)))) : 1.0f / (1.0f + expf(-d));
    }
  }
  __syncthreads();
  // 8 consecutive columns per thread with 16-byte loads and stores where everything is aligned for it: the
  // same per-element operations in the same order as the scalar loop below (the same bits), 8× fewer
  // load instructions and 8 rows' loads in flight per thread
  const bool vec = a.hidden % 8 == 0 && a.ldo % 8 == 0 && aligned16(a.o) && aligned16(a.y) &&
                   (a.shared == nullptr || (a.lds % 8 == 0 && aligned16(a.shared)));
  if (vec) {
    for (int64_t c = static_cast<int64_t>(tid) * 8; c < a.hidden; c += kCombineThreads * 8) {
      float acc[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[e] = 0.0f;
#pragma unroll 4
      for (int j = 0; j < k; ++j) {
        float v[8];
        load8(a.o, a.o_bf16, rows[j] * a.ldo + c, v);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const float p = __fmul_rn(v[e], w[j]);
          acc[e] = add_term(acc[e], p, a.bf16);
        }
      }
      if (a.shared != nullptr) {
        float s[8];
        load8(a.shared, a.o_bf16, t * a.lds + c, s);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const float v = a.shared_gate != nullptr ? __fmul_rn(gate, s[e]) : s[e];
          acc[e] = add_term(acc[e], v, a.bf16);
        }
      }
      float4* dst = reinterpret_cast<float4*>(a.y + t * a.hidden + c);
      dst[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
      dst[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
    }
    return;
  }
  for (int64_t c = tid; c < a.hidden; c += kCombineThreads) {
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) {
      float v = __fmul_rn(load_row(a.o, a.o_bf16, rows[j] * a.ldo + c), w[j]);
      acc = add_term(acc, v, a.bf16);
    }
    if (a.shared != nullptr) {
      float s = load_row(a.shared, a.o_bf16, t * a.lds + c);
      float v = a.shared_gate != nullptr ? __fmul_rn(gate, s) : s;
      acc = add_term(acc, v, a.bf16);
    }
    a.y[t * a.hidden + c] = acc;
  }
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__global__ void fill_random_bf16_kernel(uint16_t* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t h = mix64(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i));
    float u = static_cast<float>(h >> 40) * (1.0f / 8388608.0f) - 1.0f;  // [-1, 1)
    p[i] = fmt::bf16_encode(u * scale);
  }
}

}  // namespace

void launch_moe_combine(const CombineArgs& args, cudaStream_t stream) {
  if (args.tokens <= 0) return;
  moe_combine_kernel<<<static_cast<unsigned>(args.tokens), kCombineThreads, 0, stream>>>(args);
}

void launch_fill_random_bf16(uint16_t* p, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n <= 0) return;
  int64_t blocks = (n + 255) / 256;
  if (blocks > 65536) blocks = 65536;
  fill_random_bf16_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p, n, seed, scale);
}

}  // namespace moespark
