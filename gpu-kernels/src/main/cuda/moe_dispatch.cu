// moe_dispatch helper kernel; see moe_dispatch.cuh.
#include "moe_dispatch.cuh"

namespace moespark {
namespace {

constexpr int kThreads = 256;

__global__ void indices_kernel(const int32_t* __restrict__ ids, const int32_t* __restrict__ rowmap, int64_t tokens,
                               int32_t top_k, int32_t experts, int32_t* __restrict__ perm) {
  const int64_t n = tokens * top_k;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / top_k;
    const int64_t j = i % top_k;
    perm[j * tokens + t] = rowmap[t * experts + ids[i]];
  }
}

unsigned grid_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  if (b > 4096) b = 4096;
  return static_cast<unsigned>(b);
}

}  // namespace

void launch_dispatch_indices(const int32_t* ids, const int32_t* rowmap, int64_t tokens, int32_t top_k, int32_t experts,
                             int32_t* perm, cudaStream_t stream) {
  if (tokens == 0) return;
  indices_kernel<<<grid_for(tokens * top_k), kThreads, 0, stream>>>(ids, rowmap, tokens, top_k, experts, perm);
}

}  // namespace moespark
