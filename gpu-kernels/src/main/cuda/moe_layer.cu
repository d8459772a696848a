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

// One block per token. Every output element is one thread's fixed-order sum: deterministic.
__global__ void __launch_bounds__(kCombineThreads) moe_combine_kernel(CombineArgs a) {
  __shared__ int64_t rows[kCombineMaxTopK];
  __shared__ float w[kCombineMaxTopK];
  __shared__ float red[kCombineThreads];
  __shared__ float gate;
  const int64_t t = blockIdx.x;
  const int tid = threadIdx.x;
  const int k = a.top_k;
  if (tid == 0) {
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
  for (int64_t c = tid; c < a.hidden; c += kCombineThreads) {
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) {
      float v = __fmul_rn(load_row(a.o, a.o_bf16, rows[j] * a.ldo + c), w[j]);
      acc = a.bf16 ? round_bf16(__fadd_rn(acc, round_bf16(v))) : __fadd_rn(acc, v);
    }
    if (a.shared != nullptr) {
      float s = load_row(a.shared, a.o_bf16, t * a.lds + c);
      float v = a.shared_gate != nullptr ? __fmul_rn(gate, s) : s;
      acc = a.bf16 ? round_bf16(__fadd_rn(acc, round_bf16(v))) : __fadd_rn(acc, v);
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
