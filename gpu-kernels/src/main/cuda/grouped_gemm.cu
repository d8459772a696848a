// Grouped bf16 GEMM over experts: see grouped_gemm.cuh. First version: mma.sync m16n8k16 (bf16 in,
// fp32 accumulate), ldmatrix from an XOR-swizzled shared-memory tile, a 4-stage cp.async pipeline;
// 128×128×32 block tile, 8 warps of 64×32. wgmma/TMA is the next step (performance-anchors §4.3).
#include "grouped_gemm.cuh"

#include "formats.cuh"

namespace moespark {
namespace {

constexpr int BM = kGemmBlockM;
constexpr int BN = kGemmBlockN;
constexpr int BK = 32;
constexpr int STAGES = 4;
constexpr int GROUP_M = 8;
constexpr int A_STAGE = BM * BK;  // elements
constexpr int B_STAGE = BN * BK;
constexpr int SMEM_BYTES = STAGES * (A_STAGE + B_STAGE) * 2;

// Element offset of 16-byte chunk `chunk` (0..3) of tile row `row`; the XOR swizzle makes the 8 rows
// of every ldmatrix phase hit 8 different 16-byte bank groups.
__device__ __forceinline__ int swz(int row, int chunk) { return row * BK + ((chunk ^ ((row >> 1) & 3)) << 3); }

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

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
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

// Loads one BM×BK (or BN×BK) bf16 tile: rows [row0, row_end) of src (row stride ld), columns
// [k0, k0 + BK) ∩ [0, k); zeros elsewhere. vec: ld and k are multiples of 8 and src is 16-byte aligned.
template <int ROWS, int THREADS>
__device__ __forceinline__ void load_tile(uint16_t* dst, const uint16_t* src, int64_t ld, int64_t row0, int64_t row_end,
                                          int k0, int k, bool vec, int tid) {
#pragma unroll
  for (int i = tid; i < ROWS * 4; i += THREADS) {
    int r = i >> 2;
    int ch = i & 3;
    int64_t grow = row0 + r;
    int kk = k0 + ch * 8;
    uint16_t* d = dst + swz(r, ch);
    bool rv = grow < row_end;
    if (vec) {
      bool ok = rv && kk < k;
      const uint16_t* s = ok ? src + grow * ld + kk : src;
      cp_async16(smem_u32(d), s, ok ? 16 : 0);
    } else {
      uint32_t w[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t lo = (rv && kk + 2 * j < k) ? src[grow * ld + kk + 2 * j] : 0u;
        uint32_t hi = (rv && kk + 2 * j + 1 < k) ? src[grow * ld + kk + 2 * j + 1] : 0u;
        w[j] = lo | (hi << 16);
      }
      *reinterpret_cast<uint4*>(d) = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
}

// WM × WN warps; each warp computes a (BM/WM) × (BN/WN) tile as MI × NI mma fragments of 16 × 8.
template <int WM, int WN>
__global__ void __launch_bounds__(WM * WN * 32) grouped_gemm_kernel(GroupedGemmArgs p, bool vec_a, bool vec_b) {
  constexpr int THREADS = WM * WN * 32;
  constexpr int WTM = BM / WM;  // warp tile rows
  constexpr int WTN = BN / WN;  // warp tile columns
  constexpr int MI = WTM / 16;
  constexpr int NI = WTN / 8;
  static_assert(MI >= 1 && NI % 2 == 0, "warp tile: 16-row fragments, pairs of 8-column fragments");
  extern __shared__ __align__(128) uint16_t smem[];
  uint16_t* sA = smem;
  uint16_t* sB = smem + STAGES * A_STAGE;

  // ---- tile scheduler: (expert, m-tile, n-tile) from the per-expert tile prefix ----
  const int32_t* offs = p.meta;
  const int32_t* tp = p.meta + p.experts + 1;
  const int tile = blockIdx.x;
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
  const int e = lo;
  const int local = tile - tp[e];
  const int64_t seg_begin = offs[e];
  const int64_t seg_end = offs[e + 1];
  const int mt = static_cast<int>((seg_end - seg_begin + BM - 1) / BM);
  const int nt = (p.n + BN - 1) / BN;
  const int group = local / (GROUP_M * nt);
  const int first_m = group * GROUP_M;
  const int gm = min(GROUP_M, mt - first_m);
  const int within = local % (GROUP_M * nt);
  const int m_tile = first_m + within % gm;
  const int n_tile = within / gm;

  const int64_t row0 = seg_begin + static_cast<int64_t>(m_tile) * BM;
  const int64_t n0 = static_cast<int64_t>(n_tile) * BN;
  const uint16_t* bexp = p.b + static_cast<int64_t>(e) * p.n * p.ldb;

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int warp_m = warp / WN;
  const int warp_n = warp % WN;

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

  const int ktiles = (p.k + BK - 1) / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) {
      load_tile<BM, THREADS>(sA + s * A_STAGE, p.a, p.lda, row0, seg_end, s * BK, p.k, vec_a, tid);
      load_tile<BN, THREADS>(sB + s * B_STAGE, bexp, p.ldb, n0, p.n, s * BK, p.k, vec_b, tid);
    }
    cp_async_commit();
  }

  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const int nk = kt + STAGES - 1;
    if (nk < ktiles) {
      const int st = nk % STAGES;
      load_tile<BM, THREADS>(sA + st * A_STAGE, p.a, p.lda, row0, seg_end, nk * BK, p.k, vec_a, tid);
      load_tile<BN, THREADS>(sB + st * B_STAGE, bexp, p.ldb, n0, p.n, nk * BK, p.k, vec_b, tid);
    }
    cp_async_commit();

    const uint16_t* As = sA + (kt % STAGES) * A_STAGE;
    const uint16_t* Bs = sB + (kt % STAGES) * B_STAGE;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      uint32_t af[MI][4];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        int r = warp_m * WTM + mi * 16 + (lane & 15);
        int ch = ks * 2 + (lane >> 4);
        ldmatrix_x4(smem_u32(As + swz(r, ch)), af[mi][0], af[mi][1], af[mi][2], af[mi][3]);
      }
      uint32_t bf[NI][2];
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        int r = warp_n * WTN + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        int ch = ks * 2 + ((lane >> 3) & 1);
        ldmatrix_x4(smem_u32(Bs + swz(r, ch)), bf[2 * nj][0], bf[2 * nj][1], bf[2 * nj + 1][0], bf[2 * nj + 1][1]);
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma_bf16(acc[mi][ni], af[mi], bf[ni][0], bf[ni][1]);
    }
  }
  cp_async_wait<0>();

  // ---- epilogue: fragment (mi, ni, q) is row warp_m·WTM + mi·16 + lane/4 (+8 for q ≥ 2),
  //      column warp_n·WTN + ni·8 + 2·(lane%4) + (q & 1); WTN is a multiple of 16, so even ni are
  //      gate blocks and ni + 1 the matching up blocks in the SwiGLU layout ----
  const float* bias = p.bias == nullptr ? nullptr : p.bias + static_cast<int64_t>(e) * p.n;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t row = row0 + warp_m * WTM + mi * 16 + (lane >> 2) + half * 8;
      if (row >= seg_end) continue;
      if (p.epilogue == GemmEpilogue::kSwiGlu) {
#pragma unroll
        for (int ni = 0; ni < NI; ni += 2) {
#pragma unroll
          for (int q = 0; q < 2; ++q) {
            const int64_t gc = n0 + warp_n * WTN + ni * 8 + 2 * (lane & 3) + q;  // gate row of B
            if (gc >= p.n) continue;
            float g = acc[mi][ni][half * 2 + q];
            float u = acc[mi][ni + 1][half * 2 + q];
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
            const int64_t ic = (gc >> 4) * 8 + (gc & 7);
            static_cast<uint16_t*>(p.c)[row * p.ldc + ic] = fmt::bf16_encode(gated_act(p, g, u));
          }
        }
      } else {
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
#pragma unroll
          for (int q = 0; q < 2; ++q) {
            const int64_t col = n0 + warp_n * WTN + ni * 8 + 2 * (lane & 3) + q;
            if (col >= p.n) continue;
            float v = acc[mi][ni][half * 2 + q];
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
}

}  // namespace

void launch_grouped_gemm(const GroupedGemmArgs& args, cudaStream_t stream) {
  if (args.total_tiles <= 0) return;
  auto aligned16 = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; };
  bool vec_a = args.lda % 8 == 0 && args.k % 8 == 0 && aligned16(args.a);
  bool vec_b = args.ldb % 8 == 0 && args.k % 8 == 0 && aligned16(args.b);
  // The attribute is set per launch (cheap) rather than once: it is per device. A failure is left for
  // the caller's launch check (cudaGetLastError).
  if (args.variant == 2) {
    // 4 warps of 64×64: twice the mma work per ldmatrix of variant 1 (CUTLASS's sm80 128×128×32 shape)
    if (cudaFuncSetAttribute(grouped_gemm_kernel<2, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_BYTES) !=
        cudaSuccess) {
      return;
    }
    grouped_gemm_kernel<2, 2><<<args.total_tiles, 128, SMEM_BYTES, stream>>>(args, vec_a, vec_b);
  } else {
    // 8 warps of 64×32
    if (cudaFuncSetAttribute(grouped_gemm_kernel<2, 4>, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_BYTES) !=
        cudaSuccess) {
      return;
    }
    grouped_gemm_kernel<2, 4><<<args.total_tiles, 256, SMEM_BYTES, stream>>>(args, vec_a, vec_b);
  }
}

}  // namespace moespark
