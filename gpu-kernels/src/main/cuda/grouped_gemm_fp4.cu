// Grouped GEMM with FP4 weights dequantized in shared memory: see grouped_gemm_fp4.cuh.
//
// Structure (first version, variant 3's lockstep shape): 256 threads = 2 warpgroups, each 64 rows × 128
// columns of a 128 × 128 block tile (wgmma m64n128k16, bf16 operands, fp32 accumulators), BK = 64. A 3-stage
// cp.async ring carries the bf16 A tiles (16 KiB each) and the packed weight codes (4 KiB: 128 rows × 32
// bytes); every thread copies one 16-byte code chunk (row t/2, k-half t%2) and later expands that same chunk
// (32 elements, one MXFP4 scale or two NVFP4 scales) into the 128-byte-swizzled bf16 tile the wgmma reads.
// The bf16 B tile is double-buffered, so the expansion of k-tile kt + 1 runs while the tensor cores work on
// kt. Deterministic: one thread per output element, fixed k order, no atomics.
#include "grouped_gemm_fp4.cuh"

#include <cuda_bf16.h>

#include "formats.cuh"
#include "gemm_common.cuh"

namespace moespark {
namespace {

using namespace gemm;

constexpr int F4_BM = kGemmBlockM;  // 128
constexpr int F4_BN = kGemmBlockN;  // 128
constexpr int F4_BK = 64;
constexpr int F4_STAGES = 3;
constexpr int F4_A_BYTES = F4_BM * F4_BK * 2;  // 16 KiB
constexpr int F4_B_BYTES = F4_BN * F4_BK * 2;  // 16 KiB of expanded bf16
constexpr int F4_RAW_BYTES = F4_BN * F4_BK / 2;  // 4 KiB of codes
constexpr int F4_SMEM_BYTES = 1024 + F4_STAGES * F4_A_BYTES + 2 * F4_B_BYTES + F4_STAGES * F4_RAW_BYTES;
static_assert(F4_SMEM_BYTES <= 113 * 1024, "two blocks per SM");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The scale(s) of a thread's 32 weights (row j of expert e, k columns k0 .. k0 + 32): MXFP4 one factor, NVFP4 two
// (16 columns each). Zero for rows or columns past the matrix (their codes are zero-filled).
struct Fp4Scale {
  float lo;
  float hi;
};

__device__ __forceinline__ Fp4Scale load_scale(const GroupedGemmFp4Args& p, int e, int64_t j, int k0, bool ok) {
  Fp4Scale s{0.0f, 0.0f};
  if (!ok) return s;
  const uint8_t* row = p.scales + (static_cast<int64_t>(e) * p.g.n + j) * p.lds;
  if (p.format == Fp4Format::kMxfp4) {
    s.lo = fmt::e8m0_decode(__ldg(row + k0 / 32));
    s.hi = s.lo;
  } else {
    s.lo = fmt::e4m3_decode(__ldg(row + k0 / 16));
    s.hi = fmt::e4m3_decode(__ldg(row + k0 / 16 + 1));
  }
  return s;
}

// Two E2M1 codes (one byte: element 0 in the low nibble) → their bf16 pair scaled by 2^-126, by bit placement:
// the magnitude bits e1 e0 m land in bf16 bits 8..6 (exponent 0..3, mantissa's top bit), the sign in bit 15 —
// exactly e2m1 · 2^-126 (code 1, 0.5, becomes the subnormal 2^-127); x · 0x1001 puts the high nibble 16 bits up.
__device__ __forceinline__ uint32_t e2m1x2_scaled_bits(uint32_t byte) {
  const uint32_t t = byte * 0x1001u;
  return ((t << 6) & 0x01C001C0u) | ((t << 12) & 0x80008000u);
}

__device__ __forceinline__ uint32_t bf16x2_mul(uint32_t a, uint32_t b) {
  __nv_bfloat162 r = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
  return *reinterpret_cast<const uint32_t*>(&r);
}

// 16 bytes of codes (32 E2M1 elements, element 2i in the low nibble of byte i) → 4 swizzled 16-byte bf16 chunks
// (chunk_base .. +3 of tile row r): the bit-placed pair times 2^126, then times the scale, in bf16x2. Both products
// are exact (a power of two; then an E2M1 value's 2 significant bits times a scale's at most 4), so these are the
// weights' bf16 values with no rounding (bf16's subnormals included), and no shared-memory table is read.
__device__ __forceinline__ void expand_chunk(uint8_t* tile, int r, int chunk_base, uint4 codes, Fp4Scale s) {
  const uint32_t w[4] = {codes.x, codes.y, codes.z, codes.w};
  const uint32_t two126 = 0x7E807E80u;  // bf16x2 (2^126, 2^126)
  const __nv_bfloat162 lo2 = __float2bfloat162_rn(s.lo);
  const __nv_bfloat162 hi2 = __float2bfloat162_rn(s.hi);
  const uint32_t slo = *reinterpret_cast<const uint32_t*>(&lo2);
  const uint32_t shi = *reinterpret_cast<const uint32_t*>(&hi2);
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const uint32_t sc = c < 2 ? slo : shi;
    uint32_t o[4];
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const uint32_t byte = __byte_perm(w[c], 0u, 0x4440u | static_cast<uint32_t>(b));
      o[b] = bf16x2_mul(bf16x2_mul(e2m1x2_scaled_bits(byte), two126), sc);
    }
    *reinterpret_cast<uint4*>(tile + swz128(r, chunk_base + c)) = make_uint4(o[0], o[1], o[2], o[3]);
  }
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

__global__ void __launch_bounds__(256, 2) grouped_gemm_fp4_kernel(GroupedGemmFp4Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t f4_smem_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(f4_smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;                                   // [STAGES] bf16 A tiles
  uint8_t* sB = sA + F4_STAGES * F4_A_BYTES;            // [2] expanded bf16 B tiles
  uint8_t* sRaw = sB + 2 * F4_B_BYTES;                  // [STAGES] code tiles, 32 bytes per row

  const GroupedGemmArgs& g = p.g;
  const TileCoord tc = schedule_tile<F4_BM, F4_BN, 8>(g, blockIdx.x);
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wgi = warp >> 2;  // warpgroup: rows wgi·64 .. +64

  // this thread's code chunk: weight row n0 + rr, k columns k0 + 32·kh .. +32 of every k-tile
  const int rr = tid >> 1;
  const int kh = tid & 1;
  const int64_t wrow = tc.n0 + rr;
  const bool row_ok = wrow < g.n;
  const uint8_t* codes_row = p.b + (static_cast<int64_t>(tc.e) * g.n + (row_ok ? wrow : 0)) * p.ldb;
  auto load_stage = [&](int kt, int slot) {
    wg_load_tile<F4_BM>(sA + slot * F4_A_BYTES, p.a, p.lda, tc.row0, tc.seg_end, kt * F4_BK, g.k, tid);
    const int kc = kt * F4_BK + 32 * kh;
    const bool ok = row_ok && kc < g.k;
    cp_async16(smem_u32(sRaw + slot * F4_RAW_BYTES + rr * 32 + 16 * kh), ok ? codes_row + kc / 2 : p.b, ok ? 16 : 0);
  };
  auto scale_of = [&](int kt) {
    const int kc = kt * F4_BK + 32 * kh;
    return load_scale(p, tc.e, wrow, kc, row_ok && kc < g.k);
  };

  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.0f;

  const int ktiles = (g.k + F4_BK - 1) / F4_BK;
#pragma unroll
  for (int s = 0; s < F4_STAGES - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }
  Fp4Scale sc = scale_of(0);
  cp_async_wait<F4_STAGES - 2>();  // k-tile 0 (this thread's copies)
  expand_chunk(sB, rr, 4 * kh, *reinterpret_cast<const uint4*>(sRaw + rr * 32 + 16 * kh), sc);
  fence_proxy_async();  // generic-proxy writes (cp.async, the expansion) → the wgmma's async-proxy reads
  __syncthreads();

  for (int kt = 0; kt < ktiles; ++kt) {
    if (kt + 1 < ktiles) sc = scale_of(kt + 1);  // global loads in flight under the wgmma
    const uint64_t da = wg_desc(sA + (kt % F4_STAGES) * F4_A_BYTES + wgi * 64 * 128);
    const uint64_t db = wg_desc(sB + (kt & 1) * F4_B_BYTES);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < F4_BK / 16; ++ks) wgmma_m64n128k16(d, da + 2 * ks, db + 2 * ks);
    wgmma_commit();
    // refill the slot of k-tile kt − 1 (its wgmma finished before the last barrier)
    const int nk = kt + F4_STAGES - 1;
    if (nk < ktiles) load_stage(nk, nk % F4_STAGES);
    cp_async_commit();
    cp_async_wait<F4_STAGES - 2>();  // k-tile kt + 1 landed (this thread's copies)
    if (kt + 1 < ktiles) {
      // into the B buffer of k-tile kt − 1, whose wgmma is done
      const uint8_t* raw = sRaw + ((kt + 1) % F4_STAGES) * F4_RAW_BYTES;
      expand_chunk(sB + ((kt + 1) & 1) * F4_B_BYTES, rr, 4 * kh, *reinterpret_cast<const uint4*>(raw + rr * 32 + 16 * kh),
                   sc);
    }
    fence_proxy_async();
    wgmma_wait0();
    __syncthreads();
  }
  cp_async_wait<0>();

  // accumulator d[4·ni + q]: row (warp % 4)·16 + lane/4 (+8 for q ≥ 2), column ni·8 + 2·(lane%4) + (q & 1)
  if (p.col_scale != nullptr) scale_columns<16>(d, p.col_scale + static_cast<int64_t>(tc.e) * g.n, tc.n0, g.n, lane);
  const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
  store_rows<16>(g, tc.e, bias, tc.row0 + wgi * 64 + (warp & 3) * 16, tc.seg_end, tc.n0,
                 *reinterpret_cast<const float(*)[16][4]>(d), lane);
#else
  (void)p;
  __trap();
#endif
}



// ---- variant 2: TMA + warp-specialized, persistent (the bf16 variant 4's structure) -----------------------------
// 384 threads: warpgroup 0 is the producer (one thread issues the bulk tensor copies of the bf16 A tile, 128 × 64
// with the 128-byte swizzle, and of the code tile, 256 rows × 32 bytes unswizzled, into a 4-stage ring completing
// on "full" mbarriers); warpgroups 1 and 2 are the consumers of a 128 × 256 block tile (64 rows each, wgmma
// m64n256k16). Each consumer thread expands one weight row of the next k-tile (64 elements) into a triple-
// buffered bf16 B tile while the tensor cores run the current k-tile; one 256-thread barrier per k-tile orders
// the expansion before the wgmma that reads it (and, three buffers deep, after the wgmmas that read the buffer
// before). Stages go back to the producer through "empty" mbarriers once their wgmma is done. Persistent grid
// (one block per SM striding over the (expert, m-tile, n-tile) list); the epilogue is the staged one of
// gemm_common.cuh after the column scale.
constexpr int F4V2_BM = 128;
constexpr int F4V2_BN = 256;
constexpr int F4V2_BK = 64;
constexpr int F4V2_STAGES = 4;
constexpr int F4V2_A_BYTES = F4V2_BM * F4V2_BK * 2;       // 16 KiB
constexpr int F4V2_CODE_BYTES = F4V2_BN * F4V2_BK / 2;    // 8 KiB
constexpr int F4V2_B_BYTES = F4V2_BN * F4V2_BK * 2;       // 32 KiB of expanded bf16
constexpr int F4V2_B_BUFS = 3;
constexpr int F4V2_MAX_EXPERTS = 1024;
constexpr int F4V2_EPI_BYTES = 2 * kEpiStageBytes;
constexpr int F4V2_SMEM_BYTES = 1024 + F4V2_STAGES * (F4V2_A_BYTES + F4V2_CODE_BYTES) + F4V2_B_BUFS * F4V2_B_BYTES +
                                F4V2_EPI_BYTES + 2 * F4V2_STAGES * 8 + 4 * (F4V2_MAX_EXPERTS + 1);
static_assert(F4V2_SMEM_BYTES <= 227 * 1024, "FP4 variant 2 shared memory exceeds the sm_90 block limit");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The scales of one weight row's 64 k-columns k0 .. k0 + 64 (four factors, one per 16 columns; MXFP4 repeats each
// twice); zero past the matrix.
__device__ __forceinline__ void load_scales4(const GroupedGemmFp4Args& p, int e, int64_t j, int k0, float (&s)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q) s[q] = 0.0f;
  if (j >= p.g.n) return;
  const uint8_t* row = p.scales + (static_cast<int64_t>(e) * p.g.n + j) * p.lds;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int kc = k0 + 32 * h;
    if (kc >= p.g.k) continue;
    if (p.format == Fp4Format::kMxfp4) {
      s[2 * h] = s[2 * h + 1] = fmt::e8m0_decode(__ldg(row + kc / 32));
    } else {
      s[2 * h] = fmt::e4m3_decode(__ldg(row + kc / 16));
      s[2 * h + 1] = fmt::e4m3_decode(__ldg(row + kc / 16 + 1));
    }
  }
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

__global__ void __launch_bounds__(384, 1)
    grouped_gemm_fp4_tma_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_c,
                                GroupedGemmFp4Args p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) uint8_t f4v2_smem_raw[];
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(f4v2_smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* sA = base;                                              // [STAGES] bf16 A tiles
  uint8_t* sB = sA + F4V2_STAGES * F4V2_A_BYTES;                   // [3] expanded bf16 B tiles
  uint8_t* sCodes = sB + F4V2_B_BUFS * F4V2_B_BYTES;               // [STAGES] code tiles, 32 bytes a row
  float* epi = reinterpret_cast<float*>(sCodes + F4V2_STAGES * F4V2_CODE_BYTES);
  uint64_t* full = reinterpret_cast<uint64_t*>(reinterpret_cast<uint8_t*>(epi) + F4V2_EPI_BYTES);
  uint64_t* empty = full + F4V2_STAGES;
  int32_t* tp = reinterpret_cast<int32_t*>(empty + F4V2_STAGES);

  const GroupedGemmArgs& g = p.g;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int nt = (g.n + F4V2_BN - 1) / F4V2_BN;
  if (warp == 0) tile_prefix_smem<F4V2_BM>(g, nt, tp, lane);
  if (tid == 0) {
    for (int s = 0; s < F4V2_STAGES; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 8);  // lane 0 of each consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  const int total = tp[g.experts];
  const int ktiles = (g.k + F4V2_BK - 1) / F4V2_BK;

  if (warp < 4) {
    // ---- producer warpgroup: one thread issues the TMA loads ----
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (tid == 0) {
      int stage = 0;
      uint32_t phase = 0;
      for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
        const TileCoord tc = schedule_tile_smem<F4V2_BM, F4V2_BN, 8>(g, tp, tile);
        const int arow = static_cast<int>(tc.row0);
        const int crow = static_cast<int>(static_cast<int64_t>(tc.e) * g.n + tc.n0);
        for (int kt = 0; kt < ktiles; ++kt) {
          mbar_wait(&empty[stage], phase ^ 1u);
          mbar_arrive_expect_tx(&full[stage], F4V2_A_BYTES + F4V2_CODE_BYTES);
          tma_load_2d(sA + stage * F4V2_A_BYTES, &map_a, kt * F4V2_BK, arow, &full[stage]);
          tma_load_2d(sCodes + stage * F4V2_CODE_BYTES, &map_c, kt * F4V2_BK / 2, crow, &full[stage]);
          if (++stage == F4V2_STAGES) {
            stage = 0;
            phase ^= 1u;
          }
        }
      }
    }
  } else {
    // ---- consumer warpgroups 1, 2: rows (wg - 1)·64 .. +64 of the tile; thread ct expands weight row ct ----
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    const int wgi = (warp >> 2) - 1;
    const int ct = tid - 128;  // 0 .. 255
    int stage = 0;
    uint32_t phase = 0;
    int buf = 0;  // the B buffer of the next k-tile to expand (runs across tiles)
    float d[128];
    for (int tile = blockIdx.x; tile < total; tile += gridDim.x) {
      const TileCoord tc = schedule_tile_smem<F4V2_BM, F4V2_BN, 8>(g, tp, tile);
      const int64_t wrow = tc.n0 + ct;
      float sc[4];
      load_scales4(p, tc.e, wrow, 0, sc);
      // every consumer is done with the previous tile's wgmmas before its buffers are written again
      named_barrier_sync(3, 256);
      // k-tile 0: expand, then the barrier that publishes it
      mbar_wait(&full[stage], phase);
      {
        const uint8_t* cr = sCodes + stage * F4V2_CODE_BYTES + ct * 32;
        uint8_t* bt = sB + buf * F4V2_B_BYTES;
        expand_chunk(bt, ct, 0, *reinterpret_cast<const uint4*>(cr), Fp4Scale{sc[0], sc[1]});
        expand_chunk(bt, ct, 4, *reinterpret_cast<const uint4*>(cr + 16), Fp4Scale{sc[2], sc[3]});
      }
      if (ktiles > 1) load_scales4(p, tc.e, wrow, F4V2_BK, sc);
      fence_proxy_async();
      named_barrier_sync(3, 256);
#pragma unroll
      for (int i = 0; i < 128; ++i) d[i] = 0.0f;
      int prev = -1;
      for (int kt = 0; kt < ktiles; ++kt) {
        const int cur_buf = buf;
        buf = buf == F4V2_B_BUFS - 1 ? 0 : buf + 1;
        const uint64_t da = wg_desc(sA + stage * F4V2_A_BYTES + wgi * 64 * 128);
        const uint64_t db = wg_desc(sB + cur_buf * F4V2_B_BYTES);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < F4V2_BK / 16; ++ks) wgmma_m64n256k16(d, da + 2 * ks, db + 2 * ks);
        wgmma_commit();
        wgmma_wait<1>();  // the previous k-tile's group is done: its stage can be refilled
        if (prev >= 0 && lane == 0) mbar_arrive(&empty[prev]);
        prev = stage;
        if (++stage == F4V2_STAGES) {
          stage = 0;
          phase ^= 1u;
        }
        if (kt + 1 < ktiles) {
          // expand k-tile kt + 1 into the buffer last read by k-tile kt − 2's wgmmas (done in both warpgroups:
          // each waited for its kt − 2 group before the previous barrier)
          mbar_wait(&full[stage], phase);
          const uint8_t* cr = sCodes + stage * F4V2_CODE_BYTES + ct * 32;
          uint8_t* bt = sB + buf * F4V2_B_BYTES;
          expand_chunk(bt, ct, 0, *reinterpret_cast<const uint4*>(cr), Fp4Scale{sc[0], sc[1]});
          expand_chunk(bt, ct, 4, *reinterpret_cast<const uint4*>(cr + 16), Fp4Scale{sc[2], sc[3]});
          if (kt + 2 < ktiles) load_scales4(p, tc.e, wrow, (kt + 2) * F4V2_BK, sc);
          fence_proxy_async();
          named_barrier_sync(3, 256);
        }
      }
      wgmma_wait<0>();
      if (prev >= 0 && lane == 0) mbar_arrive(&empty[prev]);
      if (p.col_scale != nullptr) scale_columns<32>(d, p.col_scale + static_cast<int64_t>(tc.e) * g.n, tc.n0, g.n, lane);
      const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
      staged_epilogue<128>(g, d, epi + wgi * 64 * kEpiLd, tid - 128 * (wgi + 1), warp, lane, tc.e, tc.seg_end,
                           tc.row0 + wgi * 64, tc.n0, bias, 1 + wgi);
    }
  }
#else
  (void)map_a;
  (void)map_c;
  (void)p;
  __trap();
#endif
}

}  // namespace

cudaError_t launch_grouped_gemm_fp4(const GroupedGemmFp4Args& args, cudaStream_t stream) {
  int dev = 0;
  int major = 0;
  int sms = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (err != cudaSuccess) return err;
  if (major != 9) return cudaErrorNotSupported;
  if (args.g.total_tiles <= 0) return cudaSuccess;
  if (args.variant == 2 && args.g.experts <= F4V2_MAX_EXPERTS) {
    CUtensorMap map_a;
    CUtensorMap map_c;
    // codes as a [E·n, k/2] byte matrix (row stride ldb): columns past k/2 and rows past E·n read as zeros
    if (!gemm::encode_2d_map(&map_a, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, args.a, args.g.rows, args.g.k, args.lda,
                             F4V2_BK, F4V2_BM) ||
        !gemm::encode_2d_map(&map_c, CU_TENSOR_MAP_DATA_TYPE_UINT8, 1, args.b,
                             static_cast<int64_t>(args.g.experts) * args.g.n, args.g.k / 2, args.ldb, F4V2_BK / 2,
                             F4V2_BN, CU_TENSOR_MAP_SWIZZLE_NONE)) {
      return cudaErrorInvalidValue;
    }
    err = cudaFuncSetAttribute(grouped_gemm_fp4_tma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               F4V2_SMEM_BYTES);
    if (err != cudaSuccess) return err;
    // the host tile count (128×128 tiles) bounds this kernel's (128×256): never more blocks than tiles
    const int grid = args.g.total_tiles < sms ? args.g.total_tiles : sms;
    grouped_gemm_fp4_tma_kernel<<<grid, 384, F4V2_SMEM_BYTES, stream>>>(map_a, map_c, args);
    return cudaSuccess;
  }
  err = cudaFuncSetAttribute(grouped_gemm_fp4_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, F4_SMEM_BYTES);
  if (err != cudaSuccess) return err;
  grouped_gemm_fp4_kernel<<<args.g.total_tiles, 256, F4_SMEM_BYTES, stream>>>(args);
  return cudaSuccess;
}

}  // namespace moespark
