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
constexpr int F4_SMEM_BYTES = 1024 + F4_STAGES * F4_A_BYTES + 2 * F4_B_BYTES + F4_STAGES * F4_RAW_BYTES + 16 * 4;
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

// 16 bytes of codes (32 E2M1 elements, element 2i in the low nibble of byte i) → 4 swizzled 16-byte bf16 chunks
// (chunk_base .. +3 of tile row r). The products are exact, so the bf16 is the float's upper half.
__device__ __forceinline__ void expand_chunk(uint8_t* tile, int r, int chunk_base, uint4 codes, Fp4Scale s,
                                             const float* lut) {
  const uint32_t w[4] = {codes.x, codes.y, codes.z, codes.w};
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const float sc = c < 2 ? s.lo : s.hi;
    uint32_t o[4];
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const uint32_t byte = (w[c] >> (8 * b)) & 0xFFu;
      const float lo = lut[byte & 15u] * sc;
      const float hi = lut[byte >> 4] * sc;
      o[b] = (__float_as_uint(lo) >> 16) | (__float_as_uint(hi) & 0xFFFF0000u);
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
  float* lut = reinterpret_cast<float*>(sRaw + F4_STAGES * F4_RAW_BYTES);

  const GroupedGemmArgs& g = p.g;
  const TileCoord tc = schedule_tile<F4_BM, F4_BN, 8>(g, blockIdx.x);
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wgi = warp >> 2;  // warpgroup: rows wgi·64 .. +64
  if (tid < 16) lut[tid] = fmt::e2m1_decode(static_cast<uint8_t>(tid));

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
  __syncthreads();                 // the LUT
  expand_chunk(sB, rr, 4 * kh, *reinterpret_cast<const uint4*>(sRaw + rr * 32 + 16 * kh), sc, lut);
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
                   sc, lut);
    }
    fence_proxy_async();
    wgmma_wait0();
    __syncthreads();
  }
  cp_async_wait<0>();

  // accumulator d[4·ni + q]: row (warp % 4)·16 + lane/4 (+8 for q ≥ 2), column ni·8 + 2·(lane%4) + (q & 1)
  if (p.col_scale != nullptr) {
    const float* cs = p.col_scale + static_cast<int64_t>(tc.e) * g.n;
#pragma unroll
    for (int ni = 0; ni < 16; ++ni) {
#pragma unroll
      for (int q = 0; q < 2; ++q) {
        const int64_t col = tc.n0 + ni * 8 + 2 * (lane & 3) + q;
        const float f = col < g.n ? __ldg(cs + col) : 0.0f;
        d[4 * ni + q] = __fmul_rn(d[4 * ni + q], f);
        d[4 * ni + 2 + q] = __fmul_rn(d[4 * ni + 2 + q], f);
      }
    }
  }
  const float* bias = g.bias == nullptr ? nullptr : g.bias + static_cast<int64_t>(tc.e) * g.n;
  store_rows<16>(g, tc.e, bias, tc.row0 + wgi * 64 + (warp & 3) * 16, tc.seg_end, tc.n0,
                 *reinterpret_cast<const float(*)[16][4]>(d), lane);
#else
  (void)p;
  __trap();
#endif
}

}  // namespace

cudaError_t launch_grouped_gemm_fp4(const GroupedGemmFp4Args& args, cudaStream_t stream) {
  int dev = 0;
  int major = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (err != cudaSuccess) return err;
  if (major != 9) return cudaErrorNotSupported;
  if (args.g.total_tiles <= 0) return cudaSuccess;
  err = cudaFuncSetAttribute(grouped_gemm_fp4_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, F4_SMEM_BYTES);
  if (err != cudaSuccess) return err;
  grouped_gemm_fp4_kernel<<<args.g.total_tiles, 256, F4_SMEM_BYTES, stream>>>(args);
  return cudaSuccess;
}

}  // namespace moespark
