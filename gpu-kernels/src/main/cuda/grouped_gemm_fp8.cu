// Grouped FP8 block-scaled GEMM over experts: see grouped_gemm_fp8.cuh.
//
// One 128×128 output tile per block on the bf16 kernels' tile scheduler (schedule_tile), 2 consumer
// warpgroups of 64 rows, BK = 128 e4m3 = one 128-byte row per tile row in the 128-byte-swizzled K-major
// layout wgmma reads through shared-memory descriptors, a STAGES-deep ring. Per k-block: 4 ×
// wgmma.m64n128k32 (e4m3 × e4m3 → f32) into a temporary accumulator started from zero, then the promotion
// acc += partial · (sa[row, kb] · sb[n-block, kb]) in fp32 (one n-tile = one 128-row weight block, so sb
// is one number per k-block; sa is two per thread: its rows lane/4 and lane/4 + 8). Five ways to run it
// (args.variant; the same instructions on the same data, so the same bits): 1 = all threads load with
// cp.async and compute in lockstep; 2 = a cp.async producer warpgroup, consumers decoupled by mbarriers;
// 3 = 2 with TMA tile loads; 4 = 3 on a persistent grid; 5 (default) = 4 with 128×256 tiles, each k-block
// as two 128-column halves (see its kernel); 6 = 5 with 4 stages and the fragment epilogue; 7-10 = timing probes of
// 5; 11 = 128×128 tiles whose promotion runs while the next k-block's group is in flight (see its kernel).
// Epilogues: gemm::store_rows (1, 2), gemm::staged_epilogue with its fragment path (3-11) and gemm::tma_store_epilogue
// (5, 7-11), shared with the bf16 kernels.
#include "grouped_gemm_fp8.cuh"

#include "gemm_common.cuh"

namespace moespark {
namespace {

using namespace gemm;

constexpr int BM = kGemmFp8BlockM;
constexpr int BN = kGemmFp8BlockN;
constexpr int BK = 128;  // e4m3 elements = bytes per tile row = the scale block
constexpr int STAGES = 5;
[[maybe_unused]] constexpr int GROUP_M = 8;  // used in the sm_90a pass only
constexpr int THREADS = 256;
constexpr int A_STAGE = BM * BK;  // bytes
constexpr int B_STAGE = BN * BK;
constexpr int SMEM_BYTES = STAGES * (A_STAGE + B_STAGE) + 1024;  // + slack to align to the 1024-byte swizzle
static_assert(BN == 128, "one n-tile must be exactly one 128-row weight scale block");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // the wgmma helpers exist in the sm_90a device pass only
// Loads rows [row0, row_end) × bytes [k0, k0 + 128) ∩ [0, k) of an e4m3 matrix (row stride ld bytes) into
// the swizzled tile; zeros elsewhere. k, ld are multiples of 16 and src is 16-byte aligned (Java checks).
template <int ROWS>
__device__ __forceinline__ void load_tile_fp8(uint8_t* dst, const uint8_t* src, int64_t ld, int64_t row0,
                                              int64_t row_end, int k0, int k, int tid) {
#pragma unroll
  for (int i = tid; i < ROWS * 8; i += THREADS) {
    const int r = i >> 3;
    const int ch = i & 7;
    const int64_t grow = row0 + r;
    const int kk = k0 + ch * 16;
    const bool ok = grow < row_end && kk < k;
    const uint8_t* s = ok ? src + grow * ld + kk : src;
    cp_async16(smem_u32(dst + swz128(r, ch)), s, ok ? 16 : 0);
  }
}

// d = (accumulate ? d : 0) + A·B over k = 32 e4m3 (descriptors as gemm::wg_desc, K-major both).
__device__ __forceinline__ void wgmma_m64n128k32_e4m3(float (&d)[64], uint64_t da, uint64_t db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(accumulate));
}

// d += A·B over k = 32 e4m3 with N = 256 (128 accumulators per thread): timing probe 9 only (a promoted 256-column
// partial does not fit next to 128 final accumulators).
__device__ __forceinline__ void wgmma_m64n256k32_e4m3(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.f32.e4m3.e4m3 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(da), "l"(db));
}

// One 128-k block of a 64×128 partial sum: 4 × wgmma.m64n128k32 into d (the first from zero; k advances 32
// e4m3 = 32 bytes inside the swizzled 128-byte rows: +2 in 16-byte descriptor units), one committed group
// (the caller waits for it).
__device__ __forceinline__ void wgmma_block_e4m3(float (&d)[64], uint64_t da, uint64_t db) {
  wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < BK / 32; ++ks) wgmma_m64n128k32_e4m3(d, da + 2 * ks, db + 2 * ks, ks);
  wgmma_commit();
}

// The promotion of a finished partial: acc += d · f, f_lo for the thread's row lane/4 (accumulators with
// (i & 2) == 0), f_hi for row lane/4 + 8.
__device__ __forceinline__ void promote(float* acc, const float (&d)[64], float f_lo, float f_hi) {
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = fmaf(d[i], (i & 2) ? f_hi : f_lo, acc[i]);
}

// 4-byte async copy (scales); src_bytes 4 or 0 (0 = write zero, nothing read).
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}

// A consumer warp is done with ring stage st (tiles and scales).
__device__ __forceinline__ void release_stage(uint64_t* empty, int st, int lane) {
  __syncwarp();
  if (lane == 0) mbar_arrive(&empty[st]);
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// ---- variant 1: one k-block at a time (wgmma group, wait, promote), scales read from global memory ----
__global__ void __launch_bounds__(THREADS, 1) grouped_gemm_fp8_kernel(GroupedGemmFp8Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t fp8_smem_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(fp8_smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;
  uint8_t* sB = base + STAGES * A_STAGE;

  const GroupedGemmArgs& g = p.g;
  const TileCoord tc = schedule_tile<BM, BN, GROUP_M>(g, blockIdx.x);
  const uint8_t* bexp = p.b + static_cast<int64_t>(tc.e) * g.n * p.ldb;
  const int kblocks = (g.k + BK - 1) / BK;
  const int nblocks = (g.n + BN - 1) / BN;
  const float* sbt = p.sb + (static_cast<int64_t>(tc.e) * nblocks + tc.n0 / BN) * kblocks;

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wgi = warp >> 2;  // warpgroup: rows wgi·64 .. +64
  const int64_t row16 = tc.row0 + wgi * 64 + (warp & 3) * 16;
  const int64_t r_lo = row16 + (lane >> 2);  // accumulator rows of this thread: r_lo (q < 2), r_lo + 8
  const float* sa_lo = r_lo < tc.seg_end ? p.sa + r_lo * kblocks : nullptr;
  const float* sa_hi = r_lo + 8 < tc.seg_end ? p.sa + (r_lo + 8) * kblocks : nullptr;

  float acc[64];
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    acc[i] = 0.0f;
    d[i] = 0.0f;
  }

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < kblocks) {
      load_tile_fp8<BM>(sA + s * A_STAGE, p.a, p.lda, tc.row0, tc.seg_end, s * BK, g.k, tid);
      load_tile_fp8<BN>(sB + s * B_STAGE, bexp, p.ldb, tc.n0, g.n, s * BK, g.k, tid);
    }
    cp_async_commit();
  }
  for (int kt = 0; kt < kblocks; ++kt) {
    cp_async_wait<STAGES - 2>();
    fence_proxy_async();  // cp.async (generic proxy) writes → wgmma (async proxy) reads
    __syncthreads();      // also: every warpgroup is done with the stage about to be refilled
    const int nk = kt + STAGES - 1;
    if (nk < kblocks) {
      const int st = nk % STAGES;
      load_tile_fp8<BM>(sA + st * A_STAGE, p.a, p.lda, tc.row0, tc.seg_end, nk * BK, g.k, tid);
      load_tile_fp8<BN>(sB + st * B_STAGE, bexp, p.ldb, tc.n0, g.n, nk * BK, g.k, tid);
    }
    cp_async_commit();
    const uint8_t* As = sA + (kt % STAGES) * A_STAGE + wgi * 64 * 128;
    const uint8_t* Bs = sB + (kt % STAGES) * B_STAGE;
    const uint64_t da = wg_desc(As);
    const uint64_t db = wg_desc(Bs);
    wgmma_block_e4m3(d, da, db);
    const float s_b = __ldg(sbt + kt);
    const float s_lo = sa_lo != nullptr ? __ldg(sa_lo + kt) : 0.0f;
    const float s_hi = sa_hi != nullptr ? __ldg(sa_hi + kt) : 0.0f;
    wgmma_wait0();
    const float f_lo = s_lo * s_b;
    const float f_hi = s_hi * s_b;
    promote(acc, d, f_lo, f_hi);
  }
  cp_async_wait<0>();

  const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
  // accumulator acc[4·ni + q]: row row16 + lane/4 (+8 for q ≥ 2), column ni·8 + 2·(lane%4) + (q & 1)
  store_rows<16>(g, tc.e, bias, row16, tc.seg_end, tc.n0, *reinterpret_cast<const float(*)[16][4]>(acc), lane);
#else
  (void)p;  // never launched: the launcher checks for sm_90 first
#endif
}

// ---- variant 2 (default): warp-specialized, the two consumer warpgroups decoupled ----
// A producer warpgroup (128 threads) streams k-blocks into a STAGES-deep ring with cp.async (A and B tiles,
// plus the block's 128 row scales and its weight scale) and signals each stage on a "full" mbarrier once
// its copies have landed (cp.async.wait_group, then the proxy fence, then arrive: the wgmma reads through
// the async proxy). Each consumer warpgroup waits on "full", runs its 4 wgmmas, promotes, and each of its
// warps arrives on the stage's "empty" mbarrier; the producer refills a stage when all 8 consumer warps
// have left it. No block-wide barrier in the main loop: while one warpgroup promotes, the other's wgmma
// group keeps the tensor cores busy (what variant 1's __syncthreads per k-block prevents).
[[maybe_unused]] constexpr int SCALE_STAGE = BM + 4;  // floats: row scales, then the weight block scale
[[maybe_unused]] constexpr int IN_FLIGHT = 3;         // k-blocks the producer keeps in flight (< STAGES)
constexpr int WS_THREADS = 384;
// + the staged epilogue's buffers (variant 3's kernel only; 16 extra bytes keep them 16-byte aligned)
constexpr int SMEM2_BYTES = STAGES * (A_STAGE + B_STAGE) + STAGES * SCALE_STAGE * 4 + 2 * STAGES * 8 + 1024;
constexpr int SMEM3_BYTES = SMEM2_BYTES + 2 * kEpiStageBytes + 16;
static_assert(IN_FLIGHT < STAGES, "the producer must be able to signal a stage before it waits for a free one");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

__global__ void __launch_bounds__(WS_THREADS, 1) grouped_gemm_fp8_ws_kernel(GroupedGemmFp8Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t fp8_smem2_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(fp8_smem2_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;
  uint8_t* sB = base + STAGES * A_STAGE;
  float* sS = reinterpret_cast<float*>(base + STAGES * (A_STAGE + B_STAGE));
  uint64_t* full = reinterpret_cast<uint64_t*>(sS + STAGES * SCALE_STAGE);
  uint64_t* empty = full + STAGES;

  const GroupedGemmArgs& g = p.g;
  const TileCoord tc = schedule_tile<BM, BN, GROUP_M>(g, blockIdx.x);
  const int kblocks = (g.k + BK - 1) / BK;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 128);  // every producer thread, once its copies of the stage have landed
      mbar_init(&empty[s], 8);   // every consumer warp, once done with the stage
    }
  }
  __syncthreads();

  if (warp >= 8) {
    // ---- producer warpgroup ----
    const int pt = tid - 256;
    const uint8_t* bexp = p.b + static_cast<int64_t>(tc.e) * g.n * p.ldb;
    const int nblocks = (g.n + BN - 1) / BN;
    const float* sbt = p.sb + (static_cast<int64_t>(tc.e) * nblocks + tc.n0 / BN) * kblocks;
    const int64_t srow = tc.row0 + pt;
    const bool srow_ok = srow < tc.seg_end;
    for (int kb = 0; kb < kblocks + IN_FLIGHT; ++kb) {
      if (kb < kblocks) {
        const int st = kb % STAGES;
        if (kb >= STAGES) mbar_wait(&empty[st], ((kb / STAGES) - 1) & 1);
#pragma unroll
        for (int i = pt; i < BM * 8; i += 128) {
          const int r = i >> 3;
          const int ch = i & 7;
          const int kk = kb * BK + ch * 16;
          const int64_t ga = tc.row0 + r;
          const bool oka = ga < tc.seg_end && kk < g.k;
          cp_async16(smem_u32(sA + st * A_STAGE + swz128(r, ch)), oka ? p.a + ga * p.lda + kk : p.a, oka ? 16 : 0);
          const int64_t gb = tc.n0 + r;
          const bool okb = gb < g.n && kk < g.k;
          cp_async16(smem_u32(sB + st * B_STAGE + swz128(r, ch)), okb ? bexp + gb * p.ldb + kk : bexp, okb ? 16 : 0);
        }
        cp_async4(smem_u32(sS + st * SCALE_STAGE + pt), srow_ok ? p.sa + srow * kblocks + kb : p.sa, srow_ok ? 4 : 0);
        if (pt == 0) cp_async4(smem_u32(sS + st * SCALE_STAGE + BM), sbt + kb, 4);
      }
      cp_async_commit();  // one group per iteration (empty past the end) keeps the wait count uniform
      if (kb >= IN_FLIGHT) {
        cp_async_wait<IN_FLIGHT>();  // this thread's copies of k-block kb - IN_FLIGHT have landed
        fence_proxy_async();         // generic-proxy writes → async-proxy (wgmma) reads
        mbar_arrive(&full[(kb - IN_FLIGHT) % STAGES]);
      }
    }
    return;
  }

  // ---- consumer warpgroups: rows wgi·64 .. +64 of the tile ----
  const int wgi = warp >> 2;
  const int local16 = wgi * 64 + (warp & 3) * 16;
  const int local_lo = local16 + (lane >> 2);
  float acc[64];
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    acc[i] = 0.0f;
    d[i] = 0.0f;
  }
  for (int kb = 0; kb < kblocks; ++kb) {
    const int st = kb % STAGES;
    mbar_wait(&full[st], (kb / STAGES) & 1);
    const uint64_t da = wg_desc(sA + st * A_STAGE + wgi * 64 * 128);
    const uint64_t db = wg_desc(sB + st * B_STAGE);
    wgmma_block_e4m3(d, da, db);
    const float* sc = sS + st * SCALE_STAGE;
    const float s_b = sc[BM];
    const float f_lo = sc[local_lo] * s_b;
    const float f_hi = sc[local_lo + 8] * s_b;
    wgmma_wait<0>();
    release_stage(empty, st, lane);
    promote(acc, d, f_lo, f_hi);
  }

  const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
  store_rows<16>(g, tc.e, bias, tc.row0 + local16, tc.seg_end, tc.n0, *reinterpret_cast<const float(*)[16][4]>(acc),
                 lane);
#else
  (void)p;  // never launched: the launcher checks for sm_90 first
#endif
}

// ---- variant 3: variant 2 with the tiles loaded by the tensor-memory accelerator ----
// One producer thread issues two bulk tensor copies per k-block (A rows and B rows, 128 × 128 bytes each,
// 128-byte swizzle written by the copy engine, out-of-range rows and columns zero-filled) that complete on
// the stage's "full" mbarrier (expect_tx); the 128 producer threads add the scales with 4-byte cp.async
// whose completion also arrives on it (cp.async.mbarrier.arrive.noinc). The producer never waits for data.
// Rows of A past the expert's segment belong to the next expert: their scale is 0 and they are not stored;
// B rows past n likewise (columns masked at the store).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void cp_async_mbar_arrive_noinc(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_u32(bar)) : "memory");
}

// The TMA kernels' ring (variants 3-11), by thread 0: full[s] completes after full_count arrivals (the 128 scale
// cp.async completions + the expect_tx arrive of the TMA thread) and its bytes, empty[s] after every consumer warp's.
__device__ __forceinline__ void init_ring(uint64_t* full, uint64_t* empty, int stages, int full_count) {
  for (int s = 0; s < stages; ++s) {
    mbar_init(&full[s], full_count);
    mbar_init(&empty[s], 8);
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

__global__ void __launch_bounds__(WS_THREADS, 1)
    grouped_gemm_fp8_tma_kernel(const __grid_constant__ CUtensorMap tma_a, const __grid_constant__ CUtensorMap tma_b,
                                GroupedGemmFp8Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t fp8_smem3_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(fp8_smem3_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;
  uint8_t* sB = base + STAGES * A_STAGE;
  float* sS = reinterpret_cast<float*>(base + STAGES * (A_STAGE + B_STAGE));
  uint64_t* full = reinterpret_cast<uint64_t*>(sS + STAGES * SCALE_STAGE);
  uint64_t* empty = full + STAGES;

  float* epi = reinterpret_cast<float*>(empty + STAGES);  // 2 × kEpiStageBytes (16-byte aligned)

  const GroupedGemmArgs& g = p.g;
  const int kblocks = (g.k + BK - 1) / BK;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;

  if (tid == 0) init_ring(full, empty, STAGES, 129);
  __syncthreads();

  // Tiles blockIdx.x, + gridDim.x, ...: one tile per block (variant 3's grid) or persistent (variant 4's grid
  // of one block per SM: the producer fills the next tile's stages while the consumers store the last one).
  // `it` counts k-blocks over all of this block's tiles: the ring position and the barrier phases.
  if (warp >= 8) {
    // ---- producer warpgroup ----
    const int pt = tid - 256;
    const int nblocks = (g.n + BN - 1) / BN;
    int it = 0;
    for (int tile = blockIdx.x; tile < g.total_tiles; tile += gridDim.x) {
      const TileCoord tc = schedule_tile<BM, BN, GROUP_M>(g, tile);
      const float* sbt = p.sb + (static_cast<int64_t>(tc.e) * nblocks + tc.n0 / BN) * kblocks;
      const int64_t srow = tc.row0 + pt;
      const bool srow_ok = srow < tc.seg_end;
      const int a_row = static_cast<int>(tc.row0);
      const int b_row = static_cast<int>(static_cast<int64_t>(tc.e) * g.n + tc.n0);
      for (int kb = 0; kb < kblocks; ++kb, ++it) {
        const int st = it % STAGES;
        if (it >= STAGES) mbar_wait(&empty[st], ((it / STAGES) - 1) & 1);
        cp_async4(smem_u32(sS + st * SCALE_STAGE + pt), srow_ok ? p.sa + srow * kblocks + kb : p.sa, srow_ok ? 4 : 0);
        if (pt == 0) cp_async4(smem_u32(sS + st * SCALE_STAGE + BM), sbt + kb, 4);
        cp_async_mbar_arrive_noinc(&full[st]);
        if (pt == 0) {
          mbar_arrive_expect_tx(&full[st], A_STAGE + B_STAGE);
          tma_load_2d(sA + st * A_STAGE, &tma_a, kb * BK, a_row, &full[st]);
          tma_load_2d(sB + st * B_STAGE, &tma_b, kb * BK, b_row, &full[st]);
        }
      }
    }
    cp_async_wait<0>();
    return;
  }

  // ---- consumer warpgroups (as variant 2) ----
  const int wgi = warp >> 2;
  const int local_lo = wgi * 64 + (warp & 3) * 16 + (lane >> 2);
  float acc[64];
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.0f;
  int it = 0;
  for (int tile = blockIdx.x; tile < g.total_tiles; tile += gridDim.x) {
    const TileCoord tc = schedule_tile<BM, BN, GROUP_M>(g, tile);
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
    for (int kb = 0; kb < kblocks; ++kb, ++it) {
      const int st = it % STAGES;
      mbar_wait(&full[st], (it / STAGES) & 1);
      const uint64_t da = wg_desc(sA + st * A_STAGE + wgi * 64 * 128);
      const uint64_t db = wg_desc(sB + st * B_STAGE);
      wgmma_block_e4m3(d, da, db);
      const float* sc = sS + st * SCALE_STAGE;
      const float s_b = sc[BM];
      const float f_lo = sc[local_lo] * s_b;
      const float f_hi = sc[local_lo + 8] * s_b;
      wgmma_wait<0>();
      release_stage(empty, st, lane);
      promote(acc, d, f_lo, f_hi);
    }
    const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
    staged_epilogue<64>(g, acc, epi + wgi * (kEpiStageBytes / 4), tid - 128 * wgi, warp, lane, tc.e, tc.seg_end,
                        tc.row0 + wgi * 64, tc.n0, bias, 1 + wgi);
  }
#else
  (void)tma_a;
  (void)tma_b;
  (void)p;  // never launched: the launcher checks for sm_90 first
#endif
}


#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The producer warpgroup of the persistent TMA kernels with 128×TN tiles from a tile prefix in shared memory
// (variants 5 and 11): for every k-block of this block's tiles, once its ring stage is free, thread 0 issues the TMA
// loads of A's 128 rows and B's TN rows, the 128 threads copy the tile's 128 activation scales and threads < TN / 128
// its weight block scales (cp.async, zero-filled past the segment and past n), all arriving on the stage's full
// barrier. SCALES = false (timing probe 10): the tiles only.
template <int STAGES, int TN, int SCALE_STAGE, bool SCALES>
__device__ __forceinline__ void fp8_tma_producer(const CUtensorMap* tma_a, const CUtensorMap* tma_b,
                                                 const GroupedGemmFp8Args& p, const int32_t* tp, int total,
                                                 uint8_t* sA, uint8_t* sB, float* sS, uint64_t* full, uint64_t* empty,
                                                 int kblocks, int pt) {
  constexpr int WB = TN / BN;  // weight scale blocks per tile
  constexpr int B_BYTES = TN * BK;
  const GroupedGemmArgs& g = p.g;
  const int nblocks = (g.n + BN - 1) / BN;
  int it = 0;
  for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
    const TileCoord tc = schedule_tile_smem<BM, TN, GROUP_M>(g, tp, tile);
    const int nb = static_cast<int>(tc.n0 / BN) + (pt & (WB - 1));
    const bool sb_ok = pt < WB && nb < nblocks;
    const int64_t srow = tc.row0 + pt;
    const bool srow_ok = srow < tc.seg_end;
    // this thread's scale rows (nothing read when not ok: the copies zero-fill)
    const float* sa_row = srow_ok ? p.sa + srow * kblocks : p.sa;
    const float* sb_row = sb_ok ? p.sb + (static_cast<int64_t>(tc.e) * nblocks + nb) * kblocks : p.sb;
    const int a_row = static_cast<int>(tc.row0);
    const int b_row = static_cast<int>(static_cast<int64_t>(tc.e) * g.n + tc.n0);
    for (int kb = 0; kb < kblocks; ++kb, ++it) {
      const int st = it % STAGES;
      if (it >= STAGES) mbar_wait(&empty[st], ((it / STAGES) - 1) & 1);
      if (SCALES) {
        const uint32_t sc = smem_u32(sS + st * SCALE_STAGE);
        cp_async4(sc + 4 * pt, sa_row + (srow_ok ? kb : 0), srow_ok ? 4 : 0);
        if (pt < WB) cp_async4(sc + 4 * (BM + pt), sb_row + (sb_ok ? kb : 0), sb_ok ? 4 : 0);
        cp_async_mbar_arrive_noinc(&full[st]);
      }
      if (pt == 0) {
        mbar_arrive_expect_tx(&full[st], A_STAGE + B_BYTES);
        tma_load_2d(sA + st * A_STAGE, tma_a, kb * BK, a_row, &full[st]);
        tma_load_2d(sB + st * B_BYTES, tma_b, kb * BK, b_row, &full[st]);
      }
    }
  }
  if (SCALES) cp_async_wait<0>();
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// ---- variant 5: 128×256 tiles, persistent, registers rebalanced ----
// Variant 4 reads 32 KiB of tiles per 128-k block of a 128×128 tile (128 FLOP per byte from L2 and shared
// memory); a 128×256 tile reads 48 KiB for twice the work (171 FLOP per byte). The promotion keeps the
// partial sums out of the final accumulators, and a consumer thread cannot hold a 256-column partial (128
// floats) next to its 128 final ones, so each consumer warpgroup runs the k-block as two 64×128 halves
// through one 64-float partial: 4 × wgmma.m64n128k32 on B rows 0-127 of the stage, wait, promote into
// acc[0..63]; the same on B rows 128-255 into acc[64..127] (the m64n256 fragment layout, so the bf16
// kernels' staged epilogue stores it). Each half is variant 4's instruction sequence on the same data with
// the same scales: the same bits. Warpgroup 0 is the producer (setmaxnreg 40; one thread issues the TMA
// loads, the 128 threads the scales with cp.async, as variant 3), warpgroups 1 and 2 consume (setmaxnreg
// 232: 128 + 64 accumulators). The tile prefix of 128×256 tiles is computed in shared memory (at most
// kFp8V5MaxExperts experts; more fall back to variant 4). A tile whose right half lies past n skips it.
//
// Epilogue (EPI = 1, the default configuration): bf16's variant 4's TMA store (gemm::tma_store_epilogue: each
// consumer warp stages its 16 rows in its own 8 KiB and the copy engine writes them while the warp runs the next
// tile), which costs the ring its fourth stage; EPI = 0 (variant 6, variant 5 until 2026-11-23): 4 stages, every
// output stored from the fragments or through the staged epilogue.
constexpr int V5_BN = 256;
constexpr int V5_B_STAGE = V5_BN * BK;  // 32 KiB
constexpr int V5_SCALE_STAGE = BM + 4;  // floats: 128 row scales, then the two weight block scales
constexpr int kFp8V5MaxExperts = 1024;
// the epilogue buffer: the staged epilogue's two fp32 buffers, or (EPI = 1) the consumer warps' 8 × 8 KiB staging
template <int EPI>
constexpr int v5_epi_bytes() {
  return EPI == 1 ? 8 * 8192 : 2 * kEpiStageBytes;
}
template <int STAGES, int EPI>
constexpr int v5_smem_bytes() {
  return 1024 + STAGES * (A_STAGE + V5_B_STAGE) + v5_epi_bytes<EPI>() + STAGES * V5_SCALE_STAGE * 4 +
         2 * STAGES * 8 + 4 * (kFp8V5MaxExperts + 1);
}
static_assert(v5_smem_bytes<3, 1>() <= 227 * 1024, "variant 5 shared memory exceeds the sm_90 block limit");
static_assert(v5_smem_bytes<4, 0>() <= 227 * 1024, "variant 6 shared memory exceeds the sm_90 block limit");

// Timing probes (PROBE != 0: variants 7-10, nothing stored, wrong sums): bit 0 = no epilogue; bit 1 = no
// promotion either (every k-block's wgmma groups chained into one accumulator, the stage released one group later,
// as the bf16 kernel's main loop); bit 2 = bit 1 with one m64n256k32 per k-step instead of two m64n128k32; bit 3 =
// no scale loads (the producer issues the TMA tile loads only).
constexpr int kProbeNoEpilogue = 1;
constexpr int kProbeNoPromotion = 2;
constexpr int kProbeN256 = 4;
constexpr int kProbeNoScales = 8;

template <int V5_STAGES, int EPI, int PROBE>
__global__ void __launch_bounds__(WS_THREADS, 1)
    grouped_gemm_fp8_wide_kernel(const __grid_constant__ CUtensorMap tma_a, const __grid_constant__ CUtensorMap tma_b,
                                 const __grid_constant__ CUtensorMap map_c, bool tma_store, GroupedGemmFp8Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t fp8_smem5_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(fp8_smem5_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;
  uint8_t* sB = base + V5_STAGES * A_STAGE;
  // the epilogue buffer right after the tiles (1024-aligned: the staging's 128-byte swizzle)
  float* epi = reinterpret_cast<float*>(sB + V5_STAGES * V5_B_STAGE);
  float* sS = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(epi) + v5_epi_bytes<EPI>());
  uint64_t* full = reinterpret_cast<uint64_t*>(sS + V5_STAGES * V5_SCALE_STAGE);
  uint64_t* empty = full + V5_STAGES;
  int32_t* tp = reinterpret_cast<int32_t*>(empty + V5_STAGES);

  const GroupedGemmArgs& g = p.g;
  const int kblocks = (g.k + BK - 1) / BK;
  const int nt = (g.n + V5_BN - 1) / V5_BN;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;

  if (warp == 0) tile_prefix_smem<BM>(g, nt, tp, lane);
  if (tid == 0) init_ring(full, empty, V5_STAGES, (PROBE & kProbeNoScales) ? 1 : 129);
  __syncthreads();
  const int total = tp[g.experts];

  if (warp < 4) {
    // ---- producer warpgroup ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    fp8_tma_producer<V5_STAGES, V5_BN, V5_SCALE_STAGE, (PROBE & kProbeNoScales) == 0>(&tma_a, &tma_b, p, tp, total, sA,
                                                                                   sB, sS, full, empty, kblocks, tid);
    return;
  }

  // ---- consumer warpgroups 1, 2: rows (wg - 1)·64 .. +64 of the tile ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
  const int wgi = (warp >> 2) - 1;
  const int local_lo = wgi * 64 + (warp & 3) * 16 + (lane >> 2);
  float acc[128];
  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.0f;
  bool pending = false;  // lane 0: this warp's TMA stores in flight
  int it = 0;
  for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
    const TileCoord tc = schedule_tile_smem<BM, V5_BN, GROUP_M>(g, tp, tile);
    const bool right = tc.n0 + BN < g.n;  // the tile's right 128 columns hold outputs
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0.0f;
    if constexpr ((PROBE & kProbeNoPromotion) != 0) {
      int prev = -1;
      for (int kb = 0; kb < kblocks; ++kb, ++it) {
        const int st = it % V5_STAGES;
        mbar_wait(&full[st], (it / V5_STAGES) & 1);
        const uint64_t da = wg_desc(sA + st * A_STAGE + wgi * 64 * 128);
        const uint64_t db = wg_desc(sB + st * V5_B_STAGE);
        wgmma_fence();
        if constexpr ((PROBE & kProbeN256) != 0) {
#pragma unroll
          for (int ks = 0; ks < BK / 32; ++ks) wgmma_m64n256k32_e4m3(acc, da + 2 * ks, db + 2 * ks);
        } else {
          const uint64_t db2 = wg_desc(sB + st * V5_B_STAGE + BN * 128);
#pragma unroll
          for (int ks = 0; ks < BK / 32; ++ks) wgmma_m64n128k32_e4m3(d, da + 2 * ks, db + 2 * ks, 1);
#pragma unroll
          for (int ks = 0; ks < BK / 32; ++ks) wgmma_m64n128k32_e4m3(d, da + 2 * ks, db2 + 2 * ks, 1);
        }
        wgmma_commit();
        wgmma_wait<1>();
        if (prev >= 0 && lane == 0) mbar_arrive(&empty[prev]);
        prev = st;
      }
      wgmma_wait<0>();
      if (prev >= 0 && lane == 0) mbar_arrive(&empty[prev]);
    } else {
      for (int kb = 0; kb < kblocks; ++kb, ++it) {
        const int st = it % V5_STAGES;
        mbar_wait(&full[st], (it / V5_STAGES) & 1);
        const float* sc = sS + st * V5_SCALE_STAGE;
        const float s_lo = sc[local_lo];
        const float s_hi = sc[local_lo + 8];
        const uint64_t da = wg_desc(sA + st * A_STAGE + wgi * 64 * 128);
        const uint64_t db = wg_desc(sB + st * V5_B_STAGE);
        wgmma_block_e4m3(d, da, db);
        float s_b = sc[BM];
        float f_lo = s_lo * s_b;
        float f_hi = s_hi * s_b;
        wgmma_wait<0>();
        promote(acc, d, f_lo, f_hi);
        if (right) {
          const uint64_t db2 = wg_desc(sB + st * V5_B_STAGE + BN * 128);
          wgmma_block_e4m3(d, da, db2);
          s_b = sc[BM + 1];
          f_lo = s_lo * s_b;
          f_hi = s_hi * s_b;
          wgmma_wait<0>();
          promote(acc + 64, d, f_lo, f_hi);
        }
        release_stage(empty, st, lane);
      }
    }
    if constexpr ((PROBE & kProbeNoEpilogue) != 0) continue;
    if (EPI == 1 && tma_store &&
        tma_store_epilogue<4>(g, &map_c, acc, reinterpret_cast<uint8_t*>(epi) + (warp - 4) * 8192, tc,
                           tc.row0 + wgi * 64 + (warp & 3) * 16, lane, pending)) {
      continue;
    }
    const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
    staged_epilogue<128>(g, acc, epi + wgi * (kEpiStageBytes / 4), tid - 128 * (wgi + 1), warp, lane, tc.e,
                         tc.seg_end, tc.row0 + wgi * 64, tc.n0, bias, 1 + wgi);
  }
  if (pending) bulk_wait0();
#else
  (void)tma_a;
  (void)tma_b;
  (void)map_c;
  (void)tma_store;
  (void)p;  // never launched: the launcher checks for sm_90 first
#endif
}

// ---- variant 11: 128×128 tiles, the promotion overlapped with the next k-block's wgmma group ----
// Variant 5's consumer waits for each 64×128 partial before promoting it, so its tensor-core work stops for the
// promotion unless the other warpgroup's group happens to be queued. With 128×128 tiles a consumer thread holds 64
// final accumulators and room for two partials: k-block kb's group runs into one while the thread promotes kb - 1's
// from the other (see the loop for the order of waits and stage releases). The same instructions on the same data
// with the same scales in the same order as variants 1-6: the same bits. Persistent, variant 5's producer
// (fp8_tma_producer; tile prefix of 128×128 tiles in shared memory), epilogue: the TMA store of 64-column chunks
// (4 KiB per warp) or the staged epilogue.
constexpr int V11_STAGES = 5;
constexpr int V11_SCALE_STAGE = BM + 4;  // floats: 128 row scales, then the weight block scale
constexpr int V11_EPI_BYTES = 8 * 4096 > 2 * kEpiStageBytes ? 8 * 4096 : 2 * kEpiStageBytes;
constexpr int V11_SMEM_BYTES = 1024 + V11_STAGES * (A_STAGE + B_STAGE) + V11_EPI_BYTES + V11_STAGES * V11_SCALE_STAGE * 4 +
                               2 * V11_STAGES * 8 + 4 * (kFp8V5MaxExperts + 1);
static_assert(V11_SMEM_BYTES <= 227 * 1024, "variant 11 shared memory exceeds the sm_90 block limit");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// Variant 11's issue of k-block `it` (ring position): wait for its stage, read its promotion factors, issue its
// group into d. Returns the stage.
__device__ __forceinline__ int v11_issue(float (&d)[64], const uint8_t* sA, const uint8_t* sB, const float* sS,
                                         uint64_t* full, int it, int wgi, int local_lo, float (&f)[2]) {
  const int st = it % V11_STAGES;
  mbar_wait(&full[st], (it / V11_STAGES) & 1);
  const float* sc = sS + st * V11_SCALE_STAGE;
  const float s_b = sc[BM];
  f[0] = sc[local_lo] * s_b;
  f[1] = sc[local_lo + 8] * s_b;
  wgmma_block_e4m3(d, wg_desc(sA + st * A_STAGE + wgi * 64 * 128), wg_desc(sB + st * B_STAGE));
  return st;
}
#endif

__global__ void __launch_bounds__(WS_THREADS, 1)
    grouped_gemm_fp8_db_kernel(const __grid_constant__ CUtensorMap tma_a, const __grid_constant__ CUtensorMap tma_b,
                               const __grid_constant__ CUtensorMap map_c, bool tma_store, GroupedGemmFp8Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t fp8_smem11_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(fp8_smem11_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;
  uint8_t* sB = base + V11_STAGES * A_STAGE;
  float* epi = reinterpret_cast<float*>(sB + V11_STAGES * B_STAGE);
  float* sS = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(epi) + V11_EPI_BYTES);
  uint64_t* full = reinterpret_cast<uint64_t*>(sS + V11_STAGES * V11_SCALE_STAGE);
  uint64_t* empty = full + V11_STAGES;
  int32_t* tp = reinterpret_cast<int32_t*>(empty + V11_STAGES);

  const GroupedGemmArgs& g = p.g;
  const int kblocks = (g.k + BK - 1) / BK;
  const int nblocks = (g.n + BN - 1) / BN;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;

  if (warp == 0) tile_prefix_smem<BM>(g, nblocks, tp, lane);
  if (tid == 0) init_ring(full, empty, V11_STAGES, 129);
  __syncthreads();
  const int total = tp[g.experts];

  if (warp < 4) {
    // ---- producer warpgroup ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    fp8_tma_producer<V11_STAGES, BN, V11_SCALE_STAGE, true>(&tma_a, &tma_b, p, tp, total, sA, sB, sS, full, empty,
                                                            kblocks, tid);
    return;
  }

  // ---- consumer warpgroups 1, 2: rows (wg - 1)·64 .. +64 of the tile ----
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
  const int wgi = (warp >> 2) - 1;
  const int local_lo = wgi * 64 + (warp & 3) * 16 + (lane >> 2);
  float acc[64];
  float d0[64];
  float d1[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d0[i] = 0.0f;
  bool pending = false;  // lane 0: this warp's TMA stores in flight
  int it = 0;
  for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
    const TileCoord tc = schedule_tile_smem<BM, BN, GROUP_M>(g, tp, tile);
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
    // k-blocks in pairs: kb into d0 while kb - 1's d1 is promoted, kb + 1 into d1 while kb's d0 is; then wait for
    // kb + 1. ptxas serializes every wgmma when a partial still in flight at a branch is read after it, or when a
    // branch sits between a group's issue and its wait: so no group stays in flight across the loop's back edge, and
    // the first pair's promotion of d1 is not skipped but promotes zeros (acc + 0 · 0 = acc, bit for bit: acc starts
    // at +0).
    float f0[2];
    float f1[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 64; ++i) d1[i] = 0.0f;
    int kb = 0;
    for (; kb + 1 < kblocks; kb += 2, it += 2) {
      const int s0 = v11_issue(d0, sA, sB, sS, full, it, wgi, local_lo, f0);
      promote(acc, d1, f1[0], f1[1]);
      const int s1 = v11_issue(d1, sA, sB, sS, full, it + 1, wgi, local_lo, f1);
      wgmma_wait<1>();
      promote(acc, d0, f0[0], f0[1]);
      wgmma_wait<0>();
      release_stage(empty, s0, lane);  // not before: a branch while d1's group is in flight serializes it too
      release_stage(empty, s1, lane);
    }
    if (kb < kblocks) {  // an odd k-block count: the last one into d0
      const int s0 = v11_issue(d0, sA, sB, sS, full, it, wgi, local_lo, f0);
      ++it;
      promote(acc, d1, f1[0], f1[1]);
      wgmma_wait<0>();
      release_stage(empty, s0, lane);
      promote(acc, d0, f0[0], f0[1]);
    } else {
      promote(acc, d1, f1[0], f1[1]);
    }
    if (tma_store && tma_store_epilogue<2, 64>(g, &map_c, acc, reinterpret_cast<uint8_t*>(epi) + (warp - 4) * 4096,
                                               tc, tc.row0 + wgi * 64 + (warp & 3) * 16, lane, pending)) {
      continue;
    }
    const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
    staged_epilogue<64>(g, acc, epi + wgi * (kEpiStageBytes / 4), tid - 128 * (wgi + 1), warp, lane, tc.e, tc.seg_end,
                        tc.row0 + wgi * 64, tc.n0, bias, 1 + wgi);
  }
  if (pending) bulk_wait0();
#else
  (void)tma_a;
  (void)tma_b;
  (void)map_c;
  (void)tma_store;
  (void)p;  // never launched: the launcher checks for sm_90 first
#endif
}

// One configuration of variant 5 (ring stages, epilogue, timing probe).
template <int STAGES, int EPI, int PROBE = 0>
cudaError_t launch_v5(const GroupedGemmFp8Args& args, const CUtensorMap& ma, const CUtensorMap& mb, int grid,
                      cudaStream_t stream) {
  constexpr int bytes = v5_smem_bytes<STAGES, EPI>();
  cudaError_t err = cudaFuncSetAttribute(grouped_gemm_fp8_wide_kernel<STAGES, EPI, PROBE>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err != cudaSuccess) return err;
  CUtensorMap map_c{};
  const bool tma_store = EPI == 1 && encode_store_map(&map_c, args.g);
  grouped_gemm_fp8_wide_kernel<STAGES, EPI, PROBE><<<grid, WS_THREADS, bytes, stream>>>(ma, mb, map_c, tma_store, args);
  return cudaSuccess;
}

}  // namespace

cudaError_t launch_grouped_gemm_fp8(const GroupedGemmFp8Args& args, cudaStream_t stream) {
  if (args.g.total_tiles <= 0) return cudaSuccess;
  int dev = 0;
  int major = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (err != cudaSuccess) return err;
  if (major != 9) return cudaErrorNotSupported;
  const GroupedGemmArgs& g = args.g;
  if (args.variant >= 3) {
    // the TMA kernels: A in 128-row boxes, B in boxes of the tile's columns (256 for variants 5-10; 5-11 fall back to
    // 4 with more experts than their shared tile prefix holds); 4-11 run a persistent grid, one block per SM (the
    // host's 128×128 tile count bounds it: never more blocks than tiles)
    const bool prefix = args.variant >= 5 && g.experts <= kFp8V5MaxExperts;
    const bool wide = prefix && args.variant <= 10;
    const int variant = args.variant >= 5 && !prefix ? 4 : args.variant;
    CUtensorMap ma;
    CUtensorMap mb;
    if (!encode_2d_map(&ma, CU_TENSOR_MAP_DATA_TYPE_UINT8, 1, args.a, args.a_rows, g.k, args.lda, BK, BM) ||
        !encode_2d_map(&mb, CU_TENSOR_MAP_DATA_TYPE_UINT8, 1, args.b, static_cast<int64_t>(g.experts) * g.n, g.k,
                       args.ldb, BK, wide ? V5_BN : BN)) {
      return cudaErrorInvalidValue;
    }
    int grid = g.total_tiles;
    if (variant >= 4) {
      int sms = 0;
      err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
      if (err != cudaSuccess) return err;
      if (sms < grid) grid = sms;
    }
    switch (variant) {
      case 3:
      case 4:
        err = cudaFuncSetAttribute(grouped_gemm_fp8_tma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   SMEM3_BYTES);
        if (err != cudaSuccess) return err;
        grouped_gemm_fp8_tma_kernel<<<grid, WS_THREADS, SMEM3_BYTES, stream>>>(ma, mb, args);
        return cudaSuccess;
      case 6: return launch_v5<4, 0>(args, ma, mb, grid, stream);
      case 7: return launch_v5<3, 1, kProbeNoEpilogue>(args, ma, mb, grid, stream);
      case 8: return launch_v5<3, 1, kProbeNoEpilogue | kProbeNoPromotion>(args, ma, mb, grid, stream);
      case 9: return launch_v5<3, 1, kProbeNoEpilogue | kProbeNoPromotion | kProbeN256>(args, ma, mb, grid, stream);
      case 10: return launch_v5<3, 1, kProbeNoEpilogue | kProbeNoScales>(args, ma, mb, grid, stream);
      case 11: {
        err = cudaFuncSetAttribute(grouped_gemm_fp8_db_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   V11_SMEM_BYTES);
        if (err != cudaSuccess) return err;
        CUtensorMap map_c{};
        const bool tma_store = encode_store_map(&map_c, g);
        grouped_gemm_fp8_db_kernel<<<grid, WS_THREADS, V11_SMEM_BYTES, stream>>>(ma, mb, map_c, tma_store, args);
        return cudaSuccess;
      }
      default: return launch_v5<3, 1>(args, ma, mb, grid, stream);
    }
  } else if (args.variant == 1) {
    err = cudaFuncSetAttribute(grouped_gemm_fp8_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM_BYTES);
    if (err != cudaSuccess) return err;
    grouped_gemm_fp8_kernel<<<args.g.total_tiles, THREADS, SMEM_BYTES, stream>>>(args);
  } else {
    err = cudaFuncSetAttribute(grouped_gemm_fp8_ws_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM2_BYTES);
    if (err != cudaSuccess) return err;
    grouped_gemm_fp8_ws_kernel<<<args.g.total_tiles, WS_THREADS, SMEM2_BYTES, stream>>>(args);
  }
  return cudaSuccess;
}

}  // namespace moespark
