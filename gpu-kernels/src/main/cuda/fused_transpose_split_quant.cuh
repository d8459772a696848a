// Paddle fused_transpose_split_quant on the GPU (moe-ops-semantics.md §4): FP8 E4M3 quantization with
// one scale per (128 tokens) x (1 column), transposed to [K, tokens] and split per expert.
// Bit-identical twin of org.moespark.ops.FusedTransposeSplitQuant; Java side:
// org.moespark.ops.FusedTransposeSplitQuantGpu. Kernels never allocate.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// Experts of one call, passed by value as a kernel parameter (no host-to-device copy): the first
// 128-row block of each expert, block_start[E] = M / 128. Non-decreasing; empty experts repeat.
constexpr int kFtsqMaxExperts = 960;
struct FtsqExperts {
  int32_t block_start[kFtsqMaxExperts + 1];
};

// x: [m, k] bf16 bits, or E4M3 bytes with in_scales [m, ceil(k/128)] fp32 when fp8 (each element is
// first dequantized to bf16: bf16_rne(e4m3(x) * in_scale)). Outputs, concatenated over experts in
// order: out holds expert e's [k, n_e] E4M3 at byte offset k * start_e; scales is [m/128, k] fp32
// dequantization scales (expert e's [n_e/128, k] start at row start_e / 128). One 128x128 tile per
// block: column amax through shared memory, then each thread stores 16 consecutive tokens of a column
// with one 16-byte store. m must be a multiple of 128 (checked in Java).
void launch_fused_transpose_split_quant(const void* x, bool fp8, const float* in_scales, int64_t m, int64_t k,
                                        const FtsqExperts& experts, int32_t num_experts, bool pow2, uint8_t* out,
                                        float* scales, cudaStream_t stream);

}  // namespace moespark
