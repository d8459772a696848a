// Grouped GEMM over MoE experts (one launch for all experts), bf16 inputs, fp32 accumulation on
// tensor cores (mma.sync m16n8k16 + ldmatrix, cp.async multi-stage shared-memory pipeline).
// Java API and CPU reference: org.moespark.layer.GroupedGemm. Kernels never allocate.
//
//   for every expert e and every row r in [offsets[e], offsets[e+1]):
//     acc[r, n] = Σ_k A[r, k] · B[e, n, k]          (B in nn.Linear layout [out, in]: an "NT" GEMM)
//
// followed by one of the epilogues below. Rows of an expert are the permute's segment (experts
// ascending, no padding). The tile scheduler walks (expert, m-tile, n-tile) from a per-expert tile
// prefix so that one 1-D grid covers every expert; within an expert, m-tiles are grouped (8 at a time)
// so that neighbouring blocks share weight tiles in L2.
//
// Determinism: every output element is computed by one thread with a fixed k order; no atomics.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

enum class GemmEpilogue : int32_t {
  // C fp32 [R, ldc]: acc (+ bias)
  kStoreF32 = 0,
  // C bf16 [R, ldc]: Compute.BF16 rounding: v = bf16(acc); with bias v = bf16(v + bias)
  kStoreBf16 = 1,
  // C bf16 activations [R, ldc]: B rows are gate/up interleaved per 8 (see GroupedGemm.interleaveGateUp),
  // act[r, i] = bf16(activation(g, u)) with the rounding of Compute.FP32 (round_bf16 = 0) or BF16.
  kSwiGlu = 2,
};

struct GroupedGemmArgs {
  const uint16_t* a;      // bf16 [R, lda]
  int64_t lda;
  const uint16_t* b;      // bf16 [E, n, ldb] (expert stride n·ldb)
  int64_t ldb;
  int32_t n;              // output columns of B (kSwiGlu: 2·Ip, gate/up interleaved)
  int32_t k;              // reduction length (≤ lda, ≤ ldb)
  int32_t experts;        // E
  const int32_t* meta;    // device [2(E+1)]: row offsets [E+1], then tile prefix [E+1]
  int32_t total_tiles;    // tile prefix [E]
  const float* bias;      // fp32 [E, n] in B's row order, or nullptr
  void* c;                // fp32 or bf16 output
  int64_t ldc;
  GemmEpilogue epilogue;
  int32_t round_bf16;     // kSwiGlu: 1 = transformers' bf16 intermediate rounding (Compute.BF16)
  int32_t act_silu;       // kSwiGlu: 1 = silu on the gate (GatedActivation.Kind.SILU), 0 = identity
  float limit;            // kSwiGlu: clamp (+inf = none)
  float alpha;            // kSwiGlu: sigmoid slope
  float beta;             // kSwiGlu: added to the clamped up value
  const float* mul_scale; // kSwiGlu: fp32 [E] TensorRT static FP8 scale of the activation (Q/DQ
                          // e4m3(sat(a / s))·s before the bf16 store), or nullptr
  int32_t variant;        // kernel variant: 1, 2 = mma.sync (8 warps of 64×32, 4 of 64×64), 3 = wgmma,
                          // 4 = TMA + warp-specialized wgmma, persistent (grouped_gemm.cu)
  int64_t rows;           // R = offsets[E] (variant 4's tensor map of A)
};

// Tile sizes of the launch (the Java side computes the tile prefix with these).
constexpr int kGemmBlockM = 128;
constexpr int kGemmBlockN = 128;

// Returns without launching when total_tiles == 0.
void launch_grouped_gemm(const GroupedGemmArgs& args, cudaStream_t stream);

}  // namespace moespark
