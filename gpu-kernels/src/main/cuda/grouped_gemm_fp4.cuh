// Grouped GEMM over MoE experts with FP4 weights (MXFP4 or NVFP4) dequantized inside the kernel: the H100
// has no FP4 tensor cores, so each 128 × 64 weight tile travels from global memory as packed E2M1 codes
// (a quarter of bf16's bytes) and is expanded to bf16 in shared memory right before the bf16 wgmma reads it.
// Java API and CPU definition: org.moespark.layer.GroupedGemmFp4. Kernels never allocate.
//
//   w[e, j, c]  = e2m1(B[e, j, c]) · block_scale[e, j, c / block]        exact in bf16 (see below)
//   acc[r, j]   = ( Σ_c A[r, c] · w[e, j, c] ) · col_scale[e, j]           fp32 accumulation, col_scale optional
//   C[r, ·]     = epilogue(acc[r, ·])                                       GemmEpilogue of grouped_gemm.cuh
//
// MXFP4 (GPT-OSS): block 32, E8M0 scales 2^(s − 127), no col_scale. NVFP4 (ModelOpt, TensorRT): block 16, E4M3
// scales, col_scale = the tensor's fp32 weight_scale_2 per output row (gate and up rows may differ). Both
// products are exact in bf16: an E2M1 value has 2 significant bits, an E4M3 scale 4, a power of two none,
// so dequantization loses nothing and the only rounding is the tensor core's fp32 accumulation.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "grouped_gemm.cuh"

namespace moespark {

enum class Fp4Format : int32_t {
  kMxfp4 = 0,  // 32 elements per E8M0 scale
  kNvfp4 = 1,  // 16 elements per E4M3 scale
};

struct GroupedGemmFp4Args {
  const uint16_t* a;        // bf16 [R, lda], lda a multiple of 8, 16-byte aligned
  int64_t lda;
  const uint8_t* b;         // packed E2M1 [E, n, ldb bytes]: element 2i in the low nibble of byte i
  int64_t ldb;              // bytes per weight row, ≥ k/2, a multiple of 16
  const uint8_t* scales;    // [E, n, lds] E8M0 (MXFP4) or E4M3 (NVFP4) codes
  int64_t lds;              // scale bytes per weight row, ≥ k / block
  const float* col_scale;   // fp32 [E, n] or nullptr
  Fp4Format format;
  // n, k (a multiple of 32), experts, meta, total_tiles and the epilogue fields (bias, c, ldc, epilogue,
  // round_bf16, act_silu, limit, alpha, beta, mul_scale) as for the bf16 GEMM; g.a, g.b, g.variant unused.
  GroupedGemmArgs g;      // g.rows: R = offsets[E] (variant 2's tensor map of A)
  // 1 = 2 warpgroups loading (cp.async) and computing in lockstep, 128 × 128 tiles; 2 (default) = TMA + warp-
  // specialized, persistent, 128 × 256 tiles (the bf16 variant 4's structure); 2 falls back to 1 above 1024 experts
  int32_t variant;
};

// cudaErrorNotSupported on a device without wgmma (not sm_90); cudaErrorInvalidValue when the driver cannot
// encode variant 2's tensor maps; else the launch's setup status.
cudaError_t launch_grouped_gemm_fp4(const GroupedGemmFp4Args& args, cudaStream_t stream);

}  // namespace moespark
