// Kernels of the GPU MoE layer around the grouped GEMM (org.moespark.layer.MoeLayerGpu): the weighted
// combine of expert outputs (with the shared expert and its gate fused in) and a deterministic random
// bf16 fill for benchmarks. Kernels never allocate.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// Largest top-k the combine kernel handles (its per-token slot list lives in shared memory).
constexpr int kCombineMaxTopK = 64;

struct CombineArgs {
  const void* o;            // expert output rows [R, ldo], fp32 or bf16 (o_bf16)
  int64_t ldo;
  int32_t o_bf16;
  const int32_t* ids;       // [T, K] expert ids in [0, E) (no duplicates in a row)
  const float* weights;     // [T, K] routing weights
  const int32_t* rowmap;    // [T, E] permuted row of (t, e) or -1
  int32_t top_k;
  int32_t experts;
  int64_t tokens;
  int64_t hidden;
  const void* shared;       // shared expert output [T, lds] (dtype as o) or nullptr
  int64_t lds;
  const float* x;           // fp32 input [T, hidden] (for the shared gate) or nullptr
  const float* shared_gate; // [hidden] fp32 or nullptr (Qwen2-MoE shared_expert_gate)
  int32_t bf16;             // Compute.BF16 rounding (1) or fp32 (0)
  float* y;                 // [T, hidden] fp32 out
};

// y[t] = Σ over t's slots in ascending expert id of w·o[row] (fp32, or bf16(acc + bf16(w·o)) in bf16
// mode), then + (gated) shared output — ExpertMixture's and MoeLayer's CPU order and roundings.
void launch_moe_combine(const CombineArgs& args, cudaStream_t stream);

// p[i] = bf16(scale · u_i), u_i uniform in [-1, 1) from a counter hash of (seed, i): deterministic.
void launch_fill_random_bf16(uint16_t* p, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

}  // namespace moespark
