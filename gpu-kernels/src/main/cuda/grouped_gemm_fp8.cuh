// Grouped FP8 (e4m3) GEMM over MoE experts with DeepSeek-V3 block scales: activations quantized 1×128
// (one fp32 scale per row per 128 columns of K, as ActQuantGpu produces), weights 128×128 (one fp32
// scale per 128×128 block, as the checkpoints' weight_scale_inv). Java API and CPU reference:
// org.moespark.layer.GroupedGemmFp8. Kernels never allocate.
//
//   for every expert e, row r in [offsets[e], offsets[e+1]), column j < n:
//     acc[r, j] = Σ_kb ( Σ_{c in kb} A[r, c] · B[e, j, c] ) · sa[r, kb] · sb[e, j/128, kb]     (fp32)
//     C[r, ·]   = epilogue(acc[r, ·])     (GemmEpilogue of grouped_gemm.cuh, the same store_rows)
//
// Hopper only (sm_90a): wgmma m64n128k32 e4m3 from 128-byte-swizzled shared memory, the per-128-k-block
// partial sum promoted into a separate fp32 accumulator (DeepGEMM's technique: the FP8 tensor core
// accumulates with reduced precision inside an instruction chain, so chains are kept to 128 k).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "grouped_gemm.cuh"

namespace moespark {

struct GroupedGemmFp8Args {
  const uint8_t* a;   // e4m3 [R, lda]
  int64_t lda;        // multiple of 16
  const float* sa;    // fp32 [R, ceil(k/128)] dequantization scales
  const uint8_t* b;   // e4m3 [E, n, ldb]
  int64_t ldb;        // multiple of 16
  const float* sb;    // fp32 [E, ceil(n/128), ceil(k/128)] dequantization scales
  // n, k (a multiple of 16), experts, meta, total_tiles and the epilogue fields (bias, c, ldc, epilogue,
  // round_bf16, act_silu, limit, alpha, beta, mul_scale) as for the bf16 GEMM; g.a, g.b, g.variant unused.
  GroupedGemmArgs g;
  // 1 = 2 warpgroups loading and computing in lockstep (a block barrier per k-block); 2 = warp-specialized:
  // a cp.async producer warpgroup and 2 consumer warpgroups synchronized by mbarriers; 3 = 2 with the tiles
  // loaded by TMA (bulk tensor copies); 4 = 3 on a persistent grid; 5 = 4 with 128×256 tiles (two 128-column
  // halves per k-block, the same bits); 6 = 5 with 4 stages, outputs from the fragments; 7-10 = timing probes of 5
  // (nothing stored); 11 = 128×128 tiles, the promotion overlapped with the next k-block's group (the same bits)
  int32_t variant;
  int64_t a_rows;  // R = offsets[E] (variant 3's tensor map of A)
};

// Tile sizes of the launch (the Java side computes the tile prefix with these; the same as the bf16
// kernel's, so GroupedGemm.meta serves both).
constexpr int kGemmFp8BlockM = 128;
constexpr int kGemmFp8BlockN = 128;

// Returns cudaErrorNotSupported (nothing launched) on a device that is not sm_90 (no FP8 wgmma),
// cudaErrorInvalidValue when the driver cannot encode the tensor maps of variants 3-5, the error of a failed
// attribute call, or cudaSuccess after an asynchronous launch (the caller checks it).
// Returns cudaSuccess without launching when total_tiles == 0.
cudaError_t launch_grouped_gemm_fp8(const GroupedGemmFp8Args& args, cudaStream_t stream);

}  // namespace moespark
