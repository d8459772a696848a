// Grouped bf16 GEMM over experts: see grouped_gemm.cuh. First version: mma.sync m16n8k16 (bf16 in,
// fp32 accumulate), ldmatrix from an XOR-swizzled shared-memory tile, a 4-stage cp.async pipeline;
// 128×128×32 block tile, 8 warps of 64×32. wgmma/TMA is the next step (performance-anchors §4.3).
#include "grouped_gemm.cuh"

#include "formats.cuh"
#include "gemm_common.cuh"


namespace moespark {
namespace {

using namespace gemm;

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

  const TileCoord tc = schedule_tile<BM, BN, GROUP_M>(p, blockIdx.x);
  const int e = tc.e;
  const int64_t seg_end = tc.seg_end;
  const int64_t row0 = tc.row0;
  const int64_t n0 = tc.n0;
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
  //      column warp_n·WTN + ni·8 + 2·(lane%4) + (q & 1) ----
  const float* bias = p.bias == nullptr ? nullptr : p.bias + static_cast<int64_t>(e) * p.n;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
    store_rows<NI>(p, e, bias, row0 + warp_m * WTM + mi * 16, seg_end, n0 + warp_n * WTN, acc[mi], lane);
  }
}


// ---- variant 3: Hopper wgmma (sm_90a) ---------------------------------------------------------
// 2 warpgroups × 64 rows of a 128×128 tile, BK = 64 (one 128-byte row per tile row, stored in the
// 128-byte-swizzled K-major layout wgmma reads through shared-memory descriptors), cp.async loads in a
// 3-stage ring, wgmma.m64n128k16 with fp32 accumulators in registers (same fragment layout as mma.sync,
// so the epilogue is shared). Compiled only for sm_90a; elsewhere the launcher runs variant 1.

constexpr int WG_BK = 64;
constexpr int WG_STAGES = 3;
constexpr int WG_A_STAGE = BM * WG_BK;  // elements
constexpr int WG_B_STAGE = BN * WG_BK;
constexpr int WG_SMEM_BYTES = WG_STAGES * (WG_A_STAGE + WG_B_STAGE) * 2 + 1024;  // + alignment slack


__global__ void __launch_bounds__(256) grouped_gemm_wgmma_kernel(GroupedGemmArgs p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t wg_smem_raw[];
  // the 128-byte swizzle repeats every 1024 bytes: align the tiles to it
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(wg_smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;
  uint8_t* sB = base + WG_STAGES * WG_A_STAGE * 2;

  const TileCoord tc = schedule_tile<BM, BN, GROUP_M>(p, blockIdx.x);
  const uint16_t* bexp = p.b + static_cast<int64_t>(tc.e) * p.n * p.ldb;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wgi = warp >> 2;  // warpgroup: rows wgi·64 .. +64

  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.0f;

  const int ktiles = (p.k + WG_BK - 1) / WG_BK;
#pragma unroll
  for (int s = 0; s < WG_STAGES - 1; ++s) {
    if (s < ktiles) {
      wg_load_tile<BM>(sA + s * WG_A_STAGE * 2, p.a, p.lda, tc.row0, tc.seg_end, s * WG_BK, p.k, tid);
      wg_load_tile<BN>(sB + s * WG_B_STAGE * 2, bexp, p.ldb, tc.n0, p.n, s * WG_BK, p.k, tid);
    }
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<WG_STAGES - 2>();
    fence_proxy_async();  // cp.async (generic proxy) writes → wgmma (async proxy) reads
    __syncthreads();
    const int nk = kt + WG_STAGES - 1;
    if (nk < ktiles) {
      const int st = nk % WG_STAGES;
      wg_load_tile<BM>(sA + st * WG_A_STAGE * 2, p.a, p.lda, tc.row0, tc.seg_end, nk * WG_BK, p.k, tid);
      wg_load_tile<BN>(sB + st * WG_B_STAGE * 2, bexp, p.ldb, tc.n0, p.n, nk * WG_BK, p.k, tid);
    }
    cp_async_commit();
    const uint8_t* As = sA + (kt % WG_STAGES) * WG_A_STAGE * 2 + wgi * 64 * 128;
    const uint8_t* Bs = sB + (kt % WG_STAGES) * WG_B_STAGE * 2;
    const uint64_t da = wg_desc(As);
    const uint64_t db = wg_desc(Bs);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < WG_BK / 16; ++ks) {
      // k advances 16 elements = 32 bytes inside the swizzled 128-byte rows: +2 in 16-byte units
      wgmma_m64n128k16(d, da + 2 * ks, db + 2 * ks);
    }
    wgmma_commit();
    wgmma_wait0();
  }
  cp_async_wait<0>();

  const float* bias = p.bias == nullptr ? nullptr : p.bias + static_cast<int64_t>(tc.e) * p.n;
  // accumulator d[4·ni + q]: row (warp % 4)·16 + lane/4 (+8 for q ≥ 2), column ni·8 + 2·(lane%4) + (q & 1)
  store_rows<16>(p, tc.e, bias, tc.row0 + wgi * 64 + (warp & 3) * 16, tc.seg_end, tc.n0,
                 *reinterpret_cast<const float(*)[16][4]>(d), lane);
#else
  (void)p;
  __trap();
#endif
}



// ---- variant 4: Hopper TMA + warp-specialized wgmma, persistent (sm_90a) -----------------------------
// 128×256 block tile, BK = 64, a 3-stage shared-memory ring filled by the bulk tensor copy engine (TMA,
// 128-byte swizzle, completion on an mbarrier) from one producer thread; 2 consumer warpgroups each own
// 64 rows × 256 columns (wgmma m64n256k16, 128 fp32 accumulators per thread) and keep one wgmma group in
// flight while the next stage lands, releasing each stage through an "empty" mbarrier. The grid is
// persistent (one block per SM): blocks stride over the (expert, m-tile, n-tile) list, so the producer
// loads the next tile while the consumers run the epilogue. Registers are rebalanced with setmaxnreg
// (producer 40, consumers 232). Rows past an expert's segment and columns past n are loaded (the next
// expert's data or the tensor's zero fill) but never stored; k past the end reads the TMA's zero fill.
//
// Epilogue: for bf16 outputs without bias or FP8 scale (plain STORE_BF16 and SwiGLU: what the layer runs), a
// consumer warp whose 16 rows all lie in the expert's segment writes them into its own 8 KiB staging buffer and
// one lane hands them to the copy engine (bulk tensor stores of 64-column × 16-row boxes; columns past the
// output are clipped by the tensor map); the warp goes straight on to the next tile's main loop while they are
// written, and waits for them to have left shared memory only before it stages the next tile. A STORE_BF16 strip's
// staging costs the ring its fourth stage; SwiGLU's half-width strip fits beside 4 stages when the tile prefix is cut
// to 256 experts (H100: the FFN 4-17 % faster, DeepSeek-V3's down GEMM 7.75 → 5.75 ms; benchmarks/layer-gpu.md).
// Every other warp and option stores from the fragments or through the staged epilogue (gemm_common.cuh), with the
// same bits.

constexpr int T4_BM = 128;
constexpr int T4_BN = 256;
constexpr int T4_BK = 64;
constexpr int T4_A_BYTES = T4_BM * T4_BK * 2;  // 16 KiB
constexpr int T4_B_BYTES = T4_BN * T4_BK * 2;  // 32 KiB
constexpr int T4_MAX_EXPERTS = 1024;
// Epilogue modes (EPI): 0 = the fragment epilogue (direct stores) or the staged one; 1 = TMA store through one
// 2 KiB buffer per consumer warp (a chunk of 64 columns at a time: variant 7); 2 = TMA store through 8 KiB per
// warp (the whole 16 × 256 strip at once); 3 = the same for SwiGLU only (its 128 output columns: 4 KiB per warp,
// which leaves room for a fourth stage when the tile prefix is at most 256 experts long).
template <int EPI>
constexpr int t4_max_experts() {
  return EPI == 3 ? 256 : T4_MAX_EXPERTS;
}
// TMA-store staging per consumer warp
template <int EPI>
constexpr int t4_warp_staging() {
  return EPI == 2 ? 8192 : EPI == 3 ? 4096 : 2048;
}
// epilogue buffer: the staged epilogue's two 64-row × 32-column fp32 buffers (gemm_common.cuh), or the
// consumer warps' TMA-store staging
template <int EPI>
constexpr int t4_epi_bytes() {
  return 2 * kEpiStageBytes > 8 * t4_warp_staging<EPI>() ? 2 * kEpiStageBytes : 8 * t4_warp_staging<EPI>();
}
// tiles (1024-aligned) + epilogue buffer + full/empty barriers + the tile prefix [E+1]
template <int STAGES, int EPI>
constexpr int t4_smem_bytes() {
  return 1024 + STAGES * (T4_A_BYTES + T4_B_BYTES) + t4_epi_bytes<EPI>() + 2 * STAGES * 8 +
         4 * (t4_max_experts<EPI>() + 1);
}
static_assert(t4_smem_bytes<3, 2>() <= 227 * 1024, "variant 4 (3 stages) shared memory exceeds the sm_90 limit");
static_assert(t4_smem_bytes<4, 3>() <= 227 * 1024, "variant 4 (4 stages) shared memory exceeds the sm_90 limit");
static_assert(t4_smem_bytes<4, 0>() <= 227 * 1024, "variant 6 shared memory exceeds the sm_90 block limit");
static_assert(t4_smem_bytes<4, 1>() <= 227 * 1024, "variant 7 shared memory exceeds the sm_90 block limit");

template <int STAGES, int EPI>
__global__ void __launch_bounds__(384, 1)
    grouped_gemm_tma_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                            const __grid_constant__ CUtensorMap map_c, bool tma_store, GroupedGemmArgs p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t t4_smem_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(t4_smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;
  uint8_t* sB = base + STAGES * T4_A_BYTES;
  float* epi = reinterpret_cast<float*>(sB + STAGES * T4_B_BYTES);
  uint64_t* full = reinterpret_cast<uint64_t*>(reinterpret_cast<uint8_t*>(epi) + t4_epi_bytes<EPI>());
  uint64_t* empty = full + STAGES;
  int32_t* tp = reinterpret_cast<int32_t*>(empty + STAGES);

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int nt = (p.n + T4_BN - 1) / T4_BN;
  // tile prefix of this kernel's BM×BN tiles
  if (warp == 0) tile_prefix_smem<T4_BM>(p, nt, tp, lane);
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 8);  // lane 0 of each consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  const int total = tp[p.experts];
  const int ktiles = (p.k + T4_BK - 1) / T4_BK;

  if (warp < 4) {
    // ---- producer warpgroup: one thread issues the TMA loads ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (tid == 0) {
      int stage = 0;
      uint32_t phase = 0;
      for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
        const TileCoord tc = schedule_tile_smem<T4_BM, T4_BN, GROUP_M>(p, tp, tile);
        const int arow = static_cast<int>(tc.row0);
        const int brow = static_cast<int>(static_cast<int64_t>(tc.e) * p.n + tc.n0);
        for (int kt = 0; kt < ktiles; ++kt) {
          mbar_wait(&empty[stage], phase ^ 1u);
          mbar_arrive_expect_tx(&full[stage], T4_A_BYTES + T4_B_BYTES);
          tma_load_2d(sA + stage * T4_A_BYTES, &map_a, kt * T4_BK, arow, &full[stage]);
          tma_load_2d(sB + stage * T4_B_BYTES, &map_b, kt * T4_BK, brow, &full[stage]);
          if (++stage == STAGES) {
            stage = 0;
            phase ^= 1u;
          }
        }
      }
    }
  } else {
    // ---- consumer warpgroups 1, 2: rows (wg - 1)·64 .. +64 of the tile ----
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    const int wgi = (warp >> 2) - 1;
    const bool swiglu = p.epilogue == GemmEpilogue::kSwiGlu;
    uint8_t* wbuf = reinterpret_cast<uint8_t*>(epi) + (warp - 4) * t4_warp_staging<EPI>();
    bool pending = false;  // lane 0: bulk stores of this warp in flight
    int stage = 0;
    uint32_t phase = 0;
    float d[128];
    for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
      const TileCoord tc = schedule_tile_smem<T4_BM, T4_BN, GROUP_M>(p, tp, tile);
#pragma unroll
      for (int i = 0; i < 128; ++i) d[i] = 0.0f;
      int prev = -1;
      for (int kt = 0; kt < ktiles; ++kt) {
        mbar_wait(&full[stage], phase);
        const uint64_t da = wg_desc(sA + stage * T4_A_BYTES + wgi * 64 * 128);
        const uint64_t db = wg_desc(sB + stage * T4_B_BYTES);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < T4_BK / 16; ++ks) wgmma_m64n256k16(d, da + 2 * ks, db + 2 * ks);
        wgmma_commit();
        wgmma_wait<1>();  // the previous k-tile's group is done: its stage can be refilled
        if (prev >= 0 && lane == 0) mbar_arrive(&empty[prev]);
        prev = stage;
        if (++stage == STAGES) {
          stage = 0;
          phase ^= 1u;
        }
      }
      wgmma_wait<0>();
      if (prev >= 0 && lane == 0) mbar_arrive(&empty[prev]);
      const float* bias = p.bias == nullptr ? nullptr : p.bias + static_cast<int64_t>(tc.e) * p.n;
      if (p.variant == 5) continue;  // timing probe: the main loop alone, nothing stored
      // EPI 1 stages one 64-column chunk at a time, 2 and 3 the whole strip (3: SwiGLU only, whose strip is half)
      if (EPI != 0 && (EPI != 3 || swiglu) && tma_store &&
          tma_store_epilogue<EPI == 1 ? 1 : 4>(p, &map_c, d, wbuf, tc, tc.row0 + wgi * 64 + (warp & 3) * 16, lane,
                                                pending)) {
        continue;
      }
      staged_epilogue<128>(p, d, epi + wgi * 64 * kEpiLd, tid - 128 * (wgi + 1), warp, lane, tc.e, tc.seg_end,
                           tc.row0 + wgi * 64, tc.n0, bias, 1 + wgi);
    }
    if (pending) bulk_wait0();
  }
#else
  (void)map_a;
  (void)map_b;
  (void)map_c;
  (void)tma_store;
  (void)p;
  __trap();
#endif
}

// One configuration of variant 4 (ring stages, epilogue mode). False when a tensor map cannot be encoded.
template <int STAGES, int EPI>
bool launch_t4(const GroupedGemmArgs& args, int grid, cudaStream_t stream) {
  constexpr int bytes = t4_smem_bytes<STAGES, EPI>();
  CUtensorMap map_a;
  CUtensorMap map_b;
  if (!encode_2d_map(&map_a, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, args.a, args.rows, args.k, args.lda, T4_BK, T4_BM) ||
      !encode_2d_map(&map_b, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, args.b, static_cast<int64_t>(args.experts) * args.n,
                     args.k, args.ldb, T4_BK, T4_BN)) {
    return false;
  }
  if (cudaFuncSetAttribute(grouped_gemm_tma_kernel<STAGES, EPI>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           bytes) != cudaSuccess) {
    return true;  // left for the caller's launch check
  }
  // TMA store: the bf16 outputs of the fragment epilogue's options, 16-byte aligned rows
  CUtensorMap map_c{};
  const bool tma_store =
      EPI != 0 && (EPI != 3 || args.epilogue == GemmEpilogue::kSwiGlu) && encode_store_map(&map_c, args);
  grouped_gemm_tma_kernel<STAGES, EPI><<<grid, 384, bytes, stream>>>(map_a, map_b, map_c, tma_store, args);
  return true;
}

}  // namespace

void launch_grouped_gemm(const GroupedGemmArgs& args, cudaStream_t stream) {
  if (args.total_tiles <= 0) return;
  auto aligned16 = [](const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0; };
  bool vec_a = args.lda % 8 == 0 && args.k % 8 == 0 && aligned16(args.a);
  bool vec_b = args.ldb % 8 == 0 && args.k % 8 == 0 && aligned16(args.b);
  // The attribute is set per launch (cheap) rather than once: it is per device. A failure is left for
  // the caller's launch check (cudaGetLastError).
  if (args.variant >= 4 && vec_a && vec_b && args.experts <= T4_MAX_EXPERTS) {
    int dev = 0;
    int major = 0;
    int sms = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      return;
    }
    if (major == 9) {
      // the host tile count (128×128 tiles) bounds this kernel's (128×256): never more blocks than tiles
      const int grid = args.total_tiles < sms ? args.total_tiles : sms;
      // 4 (default): the TMA-store epilogue, over a 4-stage ring for SwiGLU (its staging is half as large) when the
      // tile prefix fits, else over 3 stages; 6: the fragment epilogue over 4 stages (variant 4 before 2026-11-23,
      // seventh session); 7: 4 stages and a TMA store of one 64-column chunk at a time; 8: 4 stages, the TMA store
      // for SwiGLU only
      const bool swiglu4 = args.epilogue == GemmEpilogue::kSwiGlu && args.experts <= t4_max_experts<3>();
      bool launched;
      switch (args.variant) {
        case 6: launched = launch_t4<4, 0>(args, grid, stream); break;
        case 7: launched = launch_t4<4, 1>(args, grid, stream); break;
        case 8:
          launched = args.experts <= t4_max_experts<3>() ? launch_t4<4, 3>(args, grid, stream)
                                                         : launch_t4<4, 0>(args, grid, stream);
          break;
        default: launched = swiglu4 ? launch_t4<4, 3>(args, grid, stream) : launch_t4<3, 2>(args, grid, stream); break;
      }
      if (launched) return;
    }
  }
  // variant 4 where it cannot run (another architecture, > T4_MAX_EXPERTS experts) falls back to 3, then 1
  if (args.variant >= 3 && args.variant != 5 && vec_a && vec_b) {
    int dev = 0;
    int major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      return;
    }
    if (major == 9) {
      if (cudaFuncSetAttribute(grouped_gemm_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               WG_SMEM_BYTES) != cudaSuccess) {
        return;
      }
      grouped_gemm_wgmma_kernel<<<args.total_tiles, 256, WG_SMEM_BYTES, stream>>>(args);
      return;
    }
  }
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
