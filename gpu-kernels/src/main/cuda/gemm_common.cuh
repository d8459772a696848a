// Device helpers shared by the grouped GEMM kernels (bf16 grouped_gemm.cu and the quantized variants):
// async copies, the fused gated-activation epilogue, the (expert, m-tile, n-tile) scheduler and the
// Hopper wgmma/shared-memory-descriptor primitives. Header-only, included by .cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cuda.h>  // CUtensorMap
#include <cudaTypedefs.h>

#include <cuda_bf16.h>

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

// The per-expert tile prefix of BM × (nt n-tiles) tiles into shared tp[E+1], by one warp (lane = its lane),
// scanning the experts' row counts (p.meta offsets) 32 at a time.
template <int BM>
__device__ __forceinline__ void tile_prefix_smem(const GroupedGemmArgs& p, int nt, int32_t* tp, int lane) {
  int carry = 0;
  for (int base_e = 0; base_e < p.experts; base_e += 32) {
    const int e = base_e + lane;
    int v = e < p.experts ? (p.meta[e + 1] - p.meta[e] + BM - 1) / BM * nt : 0;
#pragma unroll
    for (int s = 1; s < 32; s <<= 1) {
      int u = __shfl_up_sync(0xffffffffu, v, s);
      if (lane >= s) v += u;
    }
    if (e < p.experts) tp[e + 1] = carry + v;
    carry += __shfl_sync(0xffffffffu, v, 31);
  }
  if (lane == 0) tp[0] = 0;
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

// The same from a tile prefix tp[E+1] (tp[lo] <= tile < tp[hi]) held elsewhere: the persistent kernels compute
// theirs in shared memory for their own tile shape.
template <int BM, int BN, int GROUP_M>
__device__ __forceinline__ TileCoord schedule_tile_smem(const GroupedGemmArgs& p, const int32_t* tp, int tile) {
  int lo = 0;
  int hi = p.experts;
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
  t.seg_begin = p.meta[lo];
  t.seg_end = p.meta[lo + 1];
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

// The tile prefix of the host's schedule (GroupedGemm.meta: row offsets [E+1], then the prefix [E+1]).
template <int BM, int BN, int GROUP_M>
__device__ __forceinline__ TileCoord schedule_tile(const GroupedGemmArgs& p, int tile) {
  return schedule_tile_smem<BM, BN, GROUP_M>(p, p.meta + p.experts + 1, tile);
}

// acc · colScale[e, column] for a wgmma/mma fragment of NI 8-column blocks (accumulator 4·ni + q: column
// n0 + ni·8 + 2·(lane%4) + (q & 1)); columns past n get 0 (never stored).
template <int NI>
__device__ __forceinline__ void scale_columns(float* d, const float* col_scale, int64_t n0, int64_t n, int lane) {
#pragma unroll
  for (int ni = 0; ni < NI; ++ni) {
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const int64_t col = n0 + ni * 8 + 2 * (lane & 3) + q;
      const float f = col < n ? __ldg(col_scale + col) : 0.0f;
      d[4 * ni + q] = __fmul_rn(d[4 * ni + q], f);
      d[4 * ni + 2 + q] = __fmul_rn(d[4 * ni + 2 + q], f);
    }
  }
}


// ---- epilogue staged through shared memory (the wgmma kernels) -------------------------------------------
// A consumer warpgroup's 64 × N fp32 accumulators go through a 64 × 32 (+4 padding) fp32 buffer one 32-column
// chunk at a time: the per-element code is one rolled loop (fully unrolled over the accumulators it overflows
// the instruction cache), each thread handles independent elements with hoisted addresses, and the stores
// are coalesced (16-byte vectors for STORE_*).
constexpr int kEpiCols = 32;
constexpr int kEpiLd = kEpiCols + 4;
constexpr int kEpiStageBytes = 64 * kEpiLd * 4;  // per consumer warpgroup

__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Writes accumulator columns C·32 .. +32 of a warpgroup's m64nN fragment (NACC = N/2 floats per thread)
// into the staging buffer (row r_frag (+8), column c_frag (+1) of each 8-column block). Nothing for chunks
// past the fragment (the switch in staged_epilogue names all eight).
template <int C, int NACC>
__device__ __forceinline__ void stage_chunk(float* st, const float (&d)[NACC], int r_frag, int c_frag) {
#pragma unroll
  for (int j = 0; j < (C * 16 < NACC ? kEpiCols / 8 : 0); ++j) {
    constexpr int kBase = C * (kEpiCols / 8);
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      *reinterpret_cast<float2*>(st + (r_frag + half * 8) * kEpiLd + j * 8 + c_frag) =
          make_float2(d[(4 * (kBase + j) + half * 2) % NACC], d[(4 * (kBase + j) + half * 2 + 1) % NACC]);
    }
  }
}

// Plain SwiGLU — silu(g)·u with no bias, clamp, slope, offset or FP8 scale (Mixtral, Qwen, OLMoE, DeepSeek):
// the operations of gated_act for that case, in the same order (bit-identical), without its run-time
// branches, which the compiler would otherwise predicate and execute for every element.
template <bool kRound>
__device__ __forceinline__ uint16_t swiglu_plain_bf16(float g, float u) {
  if (kRound) {
    g = round_bf16(g);
    u = round_bf16(u);
    const float act = round_bf16(__fmul_rn(g, sigmoid_f(g)));
    return fmt::bf16_encode(round_bf16(__fmul_rn(act, u)));
  }
  return fmt::bf16_encode(__fmul_rn(__fmul_rn(g, sigmoid_f(__fmul_rn(1.0f, g))), __fadd_rn(u, 0.0f)));
}

// kSwiGlu on one staged chunk: 64 rows × 16 activations (gate blocks at chunk columns 0-7 and 16-23, up
// blocks 8 further). Thread wt owns activation column wt % 16 of rows wt / 16 + 8q (q < 8): one column
// and one set of addresses per thread, the 8 rows loaded, computed and stored in separate phases.
// kMode: 0 = any activation (gated_act), 1 = plain SwiGLU with bf16 roundings, 2 = plain SwiGLU in fp32.
template <int kMode>
__device__ __forceinline__ void epilogue_swiglu_chunk(const GroupedGemmArgs& p, const float* st, int wt, int e,
                                                      int64_t seg_end, int64_t row_base, int64_t col0,
                                                      const float* bias) {
  constexpr int kPer = 64 * (kEpiCols / 2) / 128;  // 8
  const int jj = wt & 15;
  const int lc = (jj >> 3) * 16 + (jj & 7);
  const int64_t gc = col0 + lc;
  if (gc >= p.n) return;
  const int r0 = wt >> 4;
  const int64_t left = seg_end - (row_base + r0);  // rows r0 + 8q with 8q < left are in the segment
  const float* s = st + r0 * kEpiLd + lc;
  float g[kPer];
  float u[kPer];
#pragma unroll
  for (int q = 0; q < kPer; ++q) {
    g[q] = s[q * 8 * kEpiLd];
    u[q] = s[q * 8 * kEpiLd + 8];
  }
  uint16_t v[kPer];
  if (kMode == 0) {
    const float* mul_scale = p.mul_scale == nullptr ? nullptr : p.mul_scale + e;
#pragma unroll
    for (int q = 0; q < kPer; ++q) v[q] = swiglu_bf16(p, bias, mul_scale, gc, g[q], u[q]);
  } else {
#pragma unroll
    for (int q = 0; q < kPer; ++q) v[q] = swiglu_plain_bf16<kMode == 1>(g[q], u[q]);
  }
  uint16_t* o = static_cast<uint16_t*>(p.c) + (row_base + r0) * p.ldc + (gc >> 4) * 8 + (gc & 7);
  const int64_t step = 8 * p.ldc;
#pragma unroll
  for (int q = 0; q < kPer; ++q) {
    if (8 * q < left) o[q * step] = v[q];
  }
}

// kStoreF32 / kStoreBf16 on one staged chunk: 8 consecutive columns of one row per thread and step.
__device__ __forceinline__ void epilogue_store_chunk(const GroupedGemmArgs& p, const float* st, int wt,
                                                     int64_t seg_end, int64_t row_base, int64_t col0,
                                                     const float* bias) {
  const bool f32 = p.epilogue == GemmEpilogue::kStoreF32;
  const bool vec_c = (reinterpret_cast<uintptr_t>(p.c) & 15u) == 0 && p.ldc % (f32 ? 4 : 8) == 0;
#pragma unroll
  for (int q = 0; q < 64 * (kEpiCols / 8) / 128; ++q) {
    const int i = wt + q * 128;
    const int r = i / (kEpiCols / 8);
    const int lc = (i % (kEpiCols / 8)) * 8;
    const int64_t row = row_base + r;
    const int64_t col = col0 + lc;
    if (row >= seg_end || col >= p.n) continue;
    const float4 lo = *reinterpret_cast<const float4*>(st + r * kEpiLd + lc);
    const float4 hi = *reinterpret_cast<const float4*>(st + r * kEpiLd + lc + 4);
    float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
    const int cnt = p.n - col < 8 ? static_cast<int>(p.n - col) : 8;
    if (f32) {
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        if (bias != nullptr && k < cnt) v[k] = __fadd_rn(v[k], bias[col + k]);
      }
      float* dst = static_cast<float*>(p.c) + row * p.ldc + col;
      if (vec_c && cnt == 8) {
        reinterpret_cast<float4*>(dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
        reinterpret_cast<float4*>(dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
      } else {
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          if (k < cnt) dst[k] = v[k];
        }
      }
    } else {
      uint16_t b[8];
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        float x = round_bf16(v[k]);
        if (bias != nullptr && k < cnt) x = round_bf16(__fadd_rn(x, bias[col + k]));
        b[k] = fmt::bf16_encode(x);
      }
      uint16_t* dst = static_cast<uint16_t*>(p.c) + row * p.ldc + col;
      if (vec_c && cnt == 8) {
        *reinterpret_cast<uint4*>(dst) =
            make_uint4(b[0] | (uint32_t(b[1]) << 16), b[2] | (uint32_t(b[3]) << 16), b[4] | (uint32_t(b[5]) << 16),
                       b[6] | (uint32_t(b[7]) << 16));
      } else {
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          if (k < cnt) dst[k] = b[k];
        }
      }
    }
  }
}

// ---- epilogue straight from the accumulator fragments (the common cases) ------------------------------------
// The staged epilogue below handles every option in one rolled loop; for the options the models use — plain
// SwiGLU (no bias, clamp, slope, offset or FP8 scale) and bias-free STORE_BF16 / STORE_F32 — a warpgroup
// stores its fragments directly: thread (warp w, lane) holds rows row_base + 16·(w%4) + lane/4 (+8) and, per
// 8-column block ni, the two adjacent columns 8·ni + 2·(lane%4) (+1), and a SwiGLU gate block's up block is
// the next one (ni + 1), so each thread computes and stores its own adjacent output pairs as one 4- or
// 8-byte store, with no shared memory, no barrier and no per-element option branches. bf16 rounding is the
// hardware's round-to-nearest-even conversion (fmt::bf16_encode's result for every non-NaN value; a NaN
// becomes the canonical NaN), the logistic is sigmoid_fast.

// fp32 logistic from the approximate exp2 and reciprocal (MUFU.EX2, MUFU.RCP): relative error within
// |x|·2^-23 + 2^-21 of the exact value (the CPU's double logistic) — far below one bf16 ulp (2^-8).
__device__ __forceinline__ float sigmoid_fast(float x) {
  float e;
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(x * -1.4426950408889634f));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return r;
}

__device__ __forceinline__ float round_bf16_hw(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Plain SwiGLU of one (gate, up) pair: kRound = transformers' bf16 rounding points (swiglu_plain_bf16<true>),
// else fp32 throughout; the result before the final rounding to bf16.
template <bool kRound>
__device__ __forceinline__ float swiglu_fast(float g, float u) {
  if (kRound) {
    g = round_bf16_hw(g);
    u = round_bf16_hw(u);
    return __fmul_rn(round_bf16_hw(__fmul_rn(g, sigmoid_fast(g))), u);
  }
  return __fmul_rn(__fmul_rn(g, sigmoid_fast(g)), __fadd_rn(u, 0.0f));
}

// The activation options of plain SwiGLU: silu on the gate, no clamp, slope or offset (bias and FP8 scale are
// checked apart). Host and device: the TMA-store map (encode_store_map) follows the same rule.
__host__ __device__ __forceinline__ bool plain_activation(const GroupedGemmArgs& p) {
  return p.act_silu && p.alpha == 1.0f && p.beta == 0.0f && p.limit == INFINITY;
}

// Whether fragment_epilogue handles this launch: the plain options above and 4-byte (bf16) / 8-byte (fp32)
// aligned output rows.
__device__ __forceinline__ bool fragment_epilogue_applies(const GroupedGemmArgs& p, const float* bias) {
  if (bias != nullptr || p.mul_scale != nullptr || (p.ldc & 1) != 0) return false;
  const uintptr_t c = reinterpret_cast<uintptr_t>(p.c);
  if (p.epilogue == GemmEpilogue::kSwiGlu) return (c & 3u) == 0 && plain_activation(p);
  if (p.epilogue == GemmEpilogue::kStoreBf16) return (c & 3u) == 0;
  return (c & 7u) == 0;  // kStoreF32
}

template <int NACC, bool kRound>
__device__ __forceinline__ void fragment_swiglu(const GroupedGemmArgs& p, const float (&d)[NACC], int64_t row,
                                                int64_t seg_end, int64_t n0, int lane) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    if (row + half * 8 >= seg_end) continue;
    __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.c) + (row + half * 8) * p.ldc;
#pragma unroll
    for (int ni = 0; ni < NACC / 4; ni += 2) {
      const int64_t gc = n0 + ni * 8 + 2 * (lane & 3);  // gate rows gc, gc + 1 of B (n is a multiple of 16)
      if (gc >= p.n) continue;
      const float a0 = swiglu_fast<kRound>(d[4 * ni + 2 * half], d[4 * (ni + 1) + 2 * half]);
      const float a1 = swiglu_fast<kRound>(d[4 * ni + 2 * half + 1], d[4 * (ni + 1) + 2 * half + 1]);
      *reinterpret_cast<__nv_bfloat162*>(out + (gc >> 4) * 8 + (gc & 7)) = __floats2bfloat162_rn(a0, a1);
    }
  }
}

template <int NACC>
__device__ __forceinline__ void fragment_store(const GroupedGemmArgs& p, const float (&d)[NACC], int64_t row,
                                               int64_t seg_end, int64_t n0, int lane) {
  const bool f32 = p.epilogue == GemmEpilogue::kStoreF32;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int64_t r = row + half * 8;
    if (r >= seg_end) continue;
#pragma unroll
    for (int ni = 0; ni < NACC / 4; ++ni) {
      const int64_t col = n0 + ni * 8 + 2 * (lane & 3);
      const float v0 = d[4 * ni + 2 * half];
      const float v1 = d[4 * ni + 2 * half + 1];
      if (f32) {
        float* out = static_cast<float*>(p.c) + r * p.ldc + col;
        if (col + 1 < p.n) {
          *reinterpret_cast<float2*>(out) = make_float2(v0, v1);
        } else if (col < p.n) {
          out[0] = v0;
        }
      } else {
        __nv_bfloat16* out = static_cast<__nv_bfloat16*>(p.c) + r * p.ldc + col;
        if (col + 1 < p.n) {
          *reinterpret_cast<__nv_bfloat162*>(out) = __floats2bfloat162_rn(v0, v1);
        } else if (col < p.n) {
          out[0] = __float2bfloat16_rn(v0);
        }
      }
    }
  }
}

// The whole epilogue of one warpgroup's m64nN tile (NACC = N/2 accumulators per thread, N = 128 or 256):
// rows row_base .. +64 (stored while < seg_end), columns n0 .. +N (stored while < p.n). wt = thread within the
// warpgroup, bar = a named barrier id for the warpgroup's 128 threads, st = its staging buffer.
template <int NACC>
__device__ __forceinline__ void staged_epilogue(const GroupedGemmArgs& p, const float (&d)[NACC], float* st, int wt,
                                                int warp, int lane, int e, int64_t seg_end, int64_t row_base,
                                                int64_t n0, const float* bias, int bar) {
  static_assert(NACC == 64 || NACC == 128, "m64n128 or m64n256 fragments");
  const int r_frag = (warp & 3) * 16 + (lane >> 2);
  if (fragment_epilogue_applies(p, bias)) {
    if (p.epilogue != GemmEpilogue::kSwiGlu) {
      fragment_store<NACC>(p, d, row_base + r_frag, seg_end, n0, lane);
    } else if (p.round_bf16) {
      fragment_swiglu<NACC, true>(p, d, row_base + r_frag, seg_end, n0, lane);
    } else {
      fragment_swiglu<NACC, false>(p, d, row_base + r_frag, seg_end, n0, lane);
    }
    return;
  }
  const int c_frag = 2 * (lane & 3);
  const bool plain = plain_activation(p) && bias == nullptr && p.mul_scale == nullptr;
#pragma unroll 1
  for (int c = 0; c < NACC / 16; ++c) {
    switch (c) {
      case 0: stage_chunk<0, NACC>(st, d, r_frag, c_frag); break;
      case 1: stage_chunk<1, NACC>(st, d, r_frag, c_frag); break;
      case 2: stage_chunk<2, NACC>(st, d, r_frag, c_frag); break;
      case 3: stage_chunk<3, NACC>(st, d, r_frag, c_frag); break;
      case 4: stage_chunk<4, NACC>(st, d, r_frag, c_frag); break;
      case 5: stage_chunk<5, NACC>(st, d, r_frag, c_frag); break;
      case 6: stage_chunk<6, NACC>(st, d, r_frag, c_frag); break;
      default: stage_chunk<7, NACC>(st, d, r_frag, c_frag); break;
    }
    named_barrier_sync(bar, 128);
    const int64_t col0 = n0 + c * kEpiCols;
    if (p.epilogue == GemmEpilogue::kSwiGlu) {
      if (plain && p.round_bf16) {
        epilogue_swiglu_chunk<1>(p, st, wt, e, seg_end, row_base, col0, bias);
      } else if (plain) {
        epilogue_swiglu_chunk<2>(p, st, wt, e, seg_end, row_base, col0, bias);
      } else {
        epilogue_swiglu_chunk<0>(p, st, wt, e, seg_end, row_base, col0, bias);
      }
    } else {
      epilogue_store_chunk(p, st, wt, seg_end, row_base, col0, bias);
    }
    named_barrier_sync(bar, 128);
  }
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

// mbarriers (count = arrivals per phase), 2-D bulk tensor loads completing on one, and wgmma waits.
__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT_%=:\n"
      "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
}
// Box at (c0 = column element, c1 = row) of a tensor map into shared memory, completing on `bar` (expect_tx).
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, int c0, int c1, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::
          "r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_u32(bar))
      : "memory");
}
// cp.async of a ROWS × 64 bf16 tile (rows [row0, row_end) of src, row stride ld; columns [k0, k0 + 64) ∩ [0, k),
// zeros elsewhere) into the 128-byte-swizzled K-major layout, by 256 threads; ld, k multiples of 8, src 16-byte aligned.
template <int ROWS>
__device__ __forceinline__ void wg_load_tile(uint8_t* dst, const uint16_t* src, int64_t ld, int64_t row0,
                                             int64_t row_end, int k0, int k, int tid) {
#pragma unroll
  for (int i = tid; i < ROWS * 8; i += 256) {
    int r = i >> 3;
    int ch = i & 7;
    int64_t grow = row0 + r;
    int kk = k0 + ch * 8;
    bool ok = grow < row_end && kk < k;
    const uint16_t* s = ok ? src + grow * ld + kk : src;
    cp_async16(smem_u32(dst + swz128(r, ch)), s, ok ? 16 : 0);
  }
}

// One m64n256k16 bf16 wgmma (128 fp32 accumulators per thread), accumulating.
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db));
}


// One m64n128k16 bf16 wgmma (fp32 accumulators d, A and B from shared-memory descriptors), accumulating.
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db));
}

template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Bulk tensor store of a box of shared memory (the map's box, its swizzle) to (c0 = column element, c1 = row);
// elements outside the tensor are not written. Completion is tracked per thread by bulk groups.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, const void* src, int c0, int c1) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(smem_u32(src)), "r"(c0), "r"(c1)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// This thread's bulk stores have finished reading shared memory (the source may be rewritten).
__device__ __forceinline__ void bulk_wait_read0() {
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
// This thread's bulk stores are complete.
__device__ __forceinline__ void bulk_wait0() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

// ---- epilogue through a TMA store (bf16 outputs of the fragment epilogue's options) ---------------------------
// A consumer warp's 16 rows (its part of the warpgroup's m64 fragment) written as bf16 into the warp's own staging
// buffer: one 2 KiB chunk per 64 output columns, each 16 rows × 128 bytes in the 128-byte swizzle (the layout a
// bulk tensor store of a 64-column × 16-row box reads; a thread's pair of a row lands in 16-byte unit
// (column / 8) ^ (row % 8), so the 32 lanes of a warp hit 32 different banks). Chunks [c_begin, c_end) only.
// The values and their rounding are fragment_store's / fragment_swiglu's, bit for bit.
template <int NACC>
__device__ __forceinline__ void stage_fragment_bf16(uint8_t* buf, const float (&d)[NACC], int lane, int c_begin,
                                                    int c_end) {
  const int rr = lane >> 2;
  const int q = (lane & 3) * 4;
#pragma unroll
  for (int ni = 0; ni < NACC / 4; ++ni) {
    const int c = ni >> 3;
    if (c < c_begin || c >= c_end) continue;
    uint8_t* chunk = buf + (c - c_begin) * 2048;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const __nv_bfloat162 v = __floats2bfloat162_rn(d[4 * ni + 2 * half], d[4 * ni + 2 * half + 1]);
      *reinterpret_cast<__nv_bfloat162*>(chunk + swz128(rr + 8 * half, ni & 7) + q) = v;
    }
  }
}

template <int NACC, bool kRound>
__device__ __forceinline__ void stage_fragment_swiglu(uint8_t* buf, const float (&d)[NACC], int lane, int c_begin,
                                                      int c_end) {
  const int rr = lane >> 2;
  const int q = (lane & 3) * 4;
#pragma unroll
  for (int ni = 0; ni < NACC / 4; ni += 2) {
    const int o = ni >> 1;  // output 8-column block
    const int c = o >> 3;
    if (c < c_begin || c >= c_end) continue;
    uint8_t* chunk = buf + (c - c_begin) * 2048;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float a0 = swiglu_fast<kRound>(d[4 * ni + 2 * half], d[4 * (ni + 1) + 2 * half]);
      const float a1 = swiglu_fast<kRound>(d[4 * ni + 2 * half + 1], d[4 * (ni + 1) + 2 * half + 1]);
      *reinterpret_cast<__nv_bfloat162*>(chunk + swz128(rr + 8 * half, o & 7) + q) = __floats2bfloat162_rn(a0, a1);
    }
  }
}

// The TMA-store epilogue of one consumer warp of a persistent kernel (NACC = 128: 128×256 tiles, bf16 variant 4, FP8
// variant 5; NACC = 64: 128×128 tiles, FP8 variant 11): when the warp's 16 rows [wrow, wrow + 16) all lie in the
// expert's segment, its bf16 outputs (plain STORE_BF16 or SwiGLU, the fragment epilogue's values and roundings: NACC / 32
// or NACC / 64 chunks of 64 columns, 2 KiB each) go through its staging
// buffer `wbuf` to bulk tensor stores of 64-column × 16-row boxes of map_c, issued by lane 0, which then has them in
// flight (`pending`). PER chunks are staged at a time (`wbuf` holds PER · 2 KiB): with all of them (PER ≥ the output's
// chunks) the warp does not wait for its stores, only for their reading of `wbuf` before it stages the next tile;
// with fewer (bf16 variant 7: PER = 1) it waits for that between rounds. False (nothing done) when a row lies past
// the segment: the caller stores that warp's outputs itself.
template <int PER, int NACC = 128>
__device__ __forceinline__ bool tma_store_epilogue(const GroupedGemmArgs& p, const CUtensorMap* map_c,
                                                   const float (&d)[NACC], uint8_t* wbuf, const TileCoord& tc,
                                                   int64_t wrow, int lane, bool& pending) {
  if (wrow + 16 > tc.seg_end) return false;
  const bool swiglu = p.epilogue == GemmEpilogue::kSwiGlu;
  const int chunks = swiglu ? NACC / 64 : NACC / 32;  // 64-column chunks of the outputs (NACC / 2 columns)
  const int col0 = static_cast<int>(swiglu ? tc.n0 / 2 : tc.n0);
  for (int c0 = 0; c0 < chunks; c0 += PER) {
    if (pending) bulk_wait_read0();
    __syncwarp();
    if (!swiglu) {
      stage_fragment_bf16<NACC>(wbuf, d, lane, c0, c0 + PER);
    } else if (p.round_bf16) {
      stage_fragment_swiglu<NACC, true>(wbuf, d, lane, c0, c0 + PER);
    } else {
      stage_fragment_swiglu<NACC, false>(wbuf, d, lane, c0, c0 + PER);
    }
    fence_proxy_async();
    __syncwarp();
    if (lane == 0) {
      for (int c = c0; c < c0 + PER && c < chunks; ++c) {
        tma_store_2d(map_c, wbuf + (c - c0) * 2048, col0 + 64 * c, static_cast<int>(wrow));
      }
      bulk_commit();
      pending = true;
    }
  }
  return true;
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// A row-major [rows, cols] matrix (row stride ld elements of elem_bytes) as a TMA tensor map read in
// box_rows × box_cols boxes with the 128-byte swizzle (box_cols · elem_bytes must be 128; or no swizzle: box rows
// then land densely, box_cols · elem_bytes a multiple of 16), out-of-range
// elements zero-filled. cuTensorMapEncodeTiled comes from the driver through the runtime's entry point (the
// library links only the static runtime, not libcuda). False when the driver or the encoding fails.
inline bool encode_2d_map(CUtensorMap* map, CUtensorMapDataType type, int elem_bytes, const void* ptr, int64_t rows,
                          int64_t cols, int64_t ld, int box_cols, int box_rows,
                          CUtensorMapSwizzle swizzle = CU_TENSOR_MAP_SWIZZLE_128B) {
  static PFN_cuTensorMapEncodeTiled_v12000 enc = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      fn = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (enc == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld) * elem_bytes};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t estrides[2] = {1, 1};
  return enc(map, type, 2, const_cast<void*>(ptr), dims, strides, box, estrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
             swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The output tensor map of tma_store_epilogue (64-column × 16-row boxes, 128-byte swizzle) for a launch whose
// epilogue it handles — bf16 outputs without bias or FP8 scale (plain STORE_BF16, plain SwiGLU: n / 2 columns),
// 16-byte aligned rows; false (map untouched) for every other launch, which keeps the fragment/staged epilogues.
inline bool encode_store_map(CUtensorMap* map, const GroupedGemmArgs& g) {
  const bool swiglu = g.epilogue == GemmEpilogue::kSwiGlu && plain_activation(g);
  if (g.bias != nullptr || g.mul_scale != nullptr || !(swiglu || g.epilogue == GemmEpilogue::kStoreBf16) ||
      g.ldc % 8 != 0 || (reinterpret_cast<uintptr_t>(g.c) & 15u) != 0) {
    return false;
  }
  return encode_2d_map(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, g.c, g.rows, swiglu ? g.n / 2 : g.n, g.ldc, 64, 16);
}

}  // namespace gemm
}  // namespace moespark
