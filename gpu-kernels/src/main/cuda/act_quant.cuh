// FP8 E4M3 1x128 activation quantization (DeepSeek act_quant / Paddle per-token-per-128-column
// blocks): a dedicated fast path of fmt::launch_block_fp8_quantize for block 1x128, bit-identical to
// org.moespark.formats.BlockFp8.quantize(rule, x, rows, cols, 1, 128, pow2, q, scales).
// Java side: org.moespark.formats.ActQuantGpu. Kernels never allocate.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// x [rows, cols] fp32 (bf16 = false) or bf16 bits; q [rows, cols] E4M3; scales [rows, ceil(cols/128)]
// fp32 (rule 0 Paddle: 1/s with s = 448/amax, pow2 floors s; rule 1 DeepSeek: max(amax,1e-4)/448,
// pow2 (ue8m0) ceils it). 16 threads per 128-column group, 8 elements per thread, 16-byte loads when
// cols is a multiple of 8 and the pointers are aligned. Returns false for an unknown rule.
bool launch_act_quant_1x128(int rule, bool bf16, const void* x, int64_t rows, int64_t cols, bool pow2, uint8_t* q,
                            float* scales, cudaStream_t stream);

}  // namespace moespark
