// Device helpers shared by the grouped GEMM kernels (bf16 grouped_gemm.cu and the quantized variants):
// async copies, the fused gated-activation epilogue, the (expert, m-tile, n-tile) scheduler and the
// Hopper wgmma/shared-memory-descriptor primitives. Header-only, included by .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "formats.cuh"
#include "grouped_gemm.cuh"

namespace moespark {
namespace gemm {

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy; src_bytes is 16 or 0 (0 = write zeros, nothing read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ float round_bf16(float x) { return fmt::bf16_decode(fmt::bf16_encode(x)); }

// fp32 logistic; the CPU computes it in double and rounds, the difference is an ulp.
__device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

// GatedActivation.apply (fp32) and applyBf16 (transformers' bf16 rounding points).
__device__ __forceinline__ float gated_act(const GroupedGemmArgs& p, float g, float u) {
  float gc = g > p.limit ? p.limit : g;
  float uc = u > p.limit ? p.limit : (u < -p.limit ? -p.limit : u);
  if (!p.round_bf16) {
    float act = p.act_silu ? __fmul_rn(gc, sigmoid_f(__fmul_rn(p.alpha, gc))) : gc;
    return __fmul_rn(act, __fadd_rn(uc, p.beta));
  }
  float act;
  if (!p.act_silu) {
    act = gc;
  } else if (p.alpha == 1.0f) {
    act = round_bf16(__fmul_rn(gc, sigmoid_f(gc)));
  } else {
    float s = round_bf16(sigmoid_f(round_bf16(__fmul_rn(gc, p.alpha))));
    act = round_bf16(__fmul_rn(gc, s));
  }
  float up = p.beta == 0.0f ? uc : round_bf16(__fadd_rn(uc, p.beta));
  return round_bf16(__fmul_rn(act, up));
}

// The kSwiGlu epilogue of one output: gate accumulator g (B row gc) and up accumulator u (B row gc + 8)
// → bf16 bits of act(g, u) with the bias, the rounding mode and the optional FP8 Q/DQ of the activation.
__device__ __forceinline__ uint16_t swiglu_bf16(const GroupedGemmArgs& p, const float* bias, const float* mul_scale,
                                                int64_t gc, float g, float u) {
  if (p.round_bf16) {
    g = round_bf16(g);
    u = round_bf16(u);
    if (bias != nullptr) {
      g = round_bf16(__fadd_rn(g, bias[gc]));
      u = round_bf16(__fadd_rn(u, bias[gc + 8]));
    }
  } else if (bias != nullptr) {
    g = __fadd_rn(g, bias[gc]);
    u = __fadd_rn(u, bias[gc + 8]);
  }
  float a = gated_act(p, g, u);
  if (mul_scale != nullptr) {  // LayerNumerics.fp8QuantDequant, bit for bit
    const float sc = *mul_scale;
    a = fmt::mul_rn(fmt::e4m3_decode(fmt::e4m3_encode_sat(fmt::div_rn(a, sc))), sc);
  }
  return fmt::bf16_encode(a);
}

// Epilogue of one 16-row fragment strip: fragment (ni, q) of a thread is row row16 + lane/4 (+8 for
// q ≥ 2), column col0 + ni·8 + 2·(lane%4) + (q & 1) — the layout of mma.m16n8 and of wgmma's
// accumulators alike. col0 is a multiple of 16, so in the SwiGLU layout even ni are gate blocks and
// ni + 1 the matching up blocks.
template <int NI>
__device__ __forceinline__ void store_rows(const GroupedGemmArgs& p, int e, const float* bias, int64_t row16,
                                           int64_t seg_end, int64_t col0, const float (&acc)[NI][4], int lane) {
  const float* mul_scale = p.mul_scale == nullptr ? nullptr : p.mul_scale + e;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t row = row16 + (lane >> 2) + half * 8;
    if (row >= seg_end) continue;
    if (p.epilogue == GemmEpilogue::kSwiGlu) {
#pragma unroll
      for (int ni = 0; ni < NI; ni += 2) {
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          const int64_t gc = col0 + ni * 8 + 2 * (lane & 3) + q;  // gate row of B
          if (gc >= p.n) continue;
          const int64_t ic = (gc >> 4) * 8 + (gc & 7);
          static_cast<uint16_t*>(p.c)[row * p.ldc + ic] =
              swiglu_bf16(p, bias, mul_scale, gc, acc[ni][half * 2 + q], acc[ni + 1][half * 2 + q]);
        }
      }
    } else {
#pragma unroll
      for (int ni = 0; ni < NI; ++ni) {
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          const int64_t col = col0 + ni * 8 + 2 * (lane & 3) + q;
          if (col >= p.n) continue;
          float v = acc[ni][half * 2 + q];
          if (p.epilogue == GemmEpilogue::kStoreF32) {
            if (bias != nullptr) v = __fadd_rn(v, bias[col]);
            static_cast<float*>(p.c)[row * p.ldc + col] = v;
          } else {
            v = round_bf16(v);
            if (bias != nullptr) v = round_bf16(__fadd_rn(v, bias[col]));
            static_cast<uint16_t*>(p.c)[row * p.ldc + col] = fmt::bf16_encode(v);
          }
        }
      }
    }
  }
}

// Tile scheduler: block `tile` → (expert e, m-tile, n-tile) from the per-expert tile prefix, m-tiles
// grouped GROUP_M at a time within an expert.
struct TileCoord {
  int e;
  int64_t seg_begin;
  int64_t seg_end;
  int64_t row0;
  int64_t n0;
};

template <int BM, int BN, int GROUP_M>
__device__ __forceinline__ TileCoord schedule_tile(const GroupedGemmArgs& p, int tile) {
  const int32_t* offs = p.meta;
  const int32_t* tp = p.meta + p.experts + 1;
  int lo = 0;
  int hi = p.experts;  // tp[lo] <= tile < tp[hi]
  while (hi - lo > 1) {
    int mid = (lo + hi) >> 1;
    if (tp[mid] <= tile) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  TileCoord t;
  t.e = lo;
  const int local = tile - tp[lo];
  t.seg_begin = offs[lo];
  t.seg_end = offs[lo + 1];
  const int mt = static_cast<int>((t.seg_end - t.seg_begin + BM - 1) / BM);
  const int nt = (p.n + BN - 1) / BN;
  const int group = local / (GROUP_M * nt);
  const int first_m = group * GROUP_M;
  const int gm = min(GROUP_M, mt - first_m);
  const int within = local % (GROUP_M * nt);
  t.row0 = t.seg_begin + static_cast<int64_t>(first_m + within % gm) * BM;
  t.n0 = static_cast<int64_t>(within / gm) * BN;
  return t;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // the wgmma helpers exist in the sm_90a device pass only
// 16-byte chunk `chunk` (0..7) of tile row `row` in the 128-byte swizzle (Swizzle<3,4,3>): byte offset.
__device__ __forceinline__ int swz128(int row, int chunk) { return row * 128 + ((chunk ^ (row & 7)) << 4); }

// Shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ uint64_t wg_desc(const void* smem_ptr) {
  uint64_t addr = smem_u32(smem_ptr);
  uint64_t d = 0;
  d |= (addr & 0x3FFFFull) >> 4;       // start address (bits 0-13)
  d |= 1ull << 16;                     // leading byte offset (unused for swizzled K-major)
  d |= (1024ull >> 4) << 32;           // stride byte offset: 8 rows × 128 bytes
  d |= 1ull << 62;                     // 128-byte swizzle
  return d;
}

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait0() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

}  // namespace gemm
}  // namespace moespark
