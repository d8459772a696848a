// Number formats on the GPU: bit-exact twins of org.moespark.formats (bf16, fp16, FP8 E4M3FN/E5M2,
// FP4 E2M1, E8M0) as __host__ __device__ inline codecs for any kernel to include, plus the launchers
// of the bulk conversion kernels in formats.cu.
//
// Every codec is hand-written bit manipulation that mirrors the Java code operation for operation
// (same integer arithmetic, same fp32 operations in the same order, all fp32 arithmetic through
// __fmul_rn/__fdiv_rn/__frcp_rn on the device so that no FMA contraction or approximate division
// can change a bit). cuda_fp8.h intrinsics are not used: their NaN encodings and the E5M2/E8M0
// overflow rules are not all documented, and the CPU must produce exactly these bits.
// Semantics (rounding, saturation, NaN rules, which upstream each variant matches) are documented in
// the Java classes of the same names: Bf16, Fp16, Fp8E4m3, Fp8E5m2, Fp4E2m1, E8m0, Nvfp4, Mxfp,
// BlockFp8.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#define MOESPARK_HD __host__ __device__ __forceinline__

namespace moespark {
namespace fmt {

// ---- fp32 helpers ------------------------------------------------------------------------------

MOESPARK_HD uint32_t f2u(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

MOESPARK_HD float u2f(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// IEEE round-to-nearest fp32 operations, never contracted into an FMA.
MOESPARK_HD float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

MOESPARK_HD float div_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

MOESPARK_HD float rcp_rn(float a) {
#ifdef __CUDA_ARCH__
  return __frcp_rn(a);
#else
  return 1.0f / a;
#endif
}

// NaN → the canonical quiet NaN 0x7FC00000 (MiniFloat.canonicalNaN): arithmetic NaN payloads differ
// between the JVM and the GPU, so dequantization outputs pass through this.
MOESPARK_HD float canonical_nan(float v) { return v != v ? u2f(0x7FC00000u) : v; }

MOESPARK_HD bool is_nan_bits(uint32_t abs_bits) { return abs_bits > 0x7F800000u; }

// |x| with NaN ignored by the caller's max: fmaxf(m, NaN) = m, like Java's `if (a > m) m = a`.
MOESPARK_HD float abs_max(float m, float x) {
  float a = u2f(f2u(x) & 0x7FFFFFFFu);
  return a > m ? a : m;
}

// 2^k for k in [-149, 127], exact (MiniFloat.pow2).
MOESPARK_HD float pow2f(int k) {
  return k >= -126 ? u2f(static_cast<uint32_t>(k + 127) << 23) : u2f(1u << (k + 149));
}

// floor(log2(a)) for finite a > 0, exact also for fp32 subnormals (MiniFloat.floorLog2).
MOESPARK_HD int floor_log2(float a) {
  uint32_t bits = f2u(a) & 0x7FFFFFFFu;
  int e = static_cast<int>(bits >> 23);
  if (e != 0) return e - 127;
#ifdef __CUDA_ARCH__
  int lz = __clz(bits);
#else
  int lz = __builtin_clz(bits);
#endif
  return (31 - lz) - 149;
}

// RNE of a finite non-negative fp32 magnitude onto a format with `mant` mantissa bits and exponent
// bias `bias`, subnormals included; returns the magnitude code without overflow handling
// (MiniFloat.roundMagnitude).
MOESPARK_HD uint32_t round_magnitude(uint32_t abs_bits, int mant, int bias) {
  const int min_normal_exp = 1 - bias;
  if (abs_bits < (static_cast<uint32_t>(min_normal_exp + 127) << 23)) {
    float scaled = mul_rn(u2f(abs_bits), u2f(static_cast<uint32_t>(127 + mant - min_normal_exp) << 23));
    return static_cast<uint32_t>(rintf(scaled));
  }
  const int shift = 23 - mant;
  uint32_t r = abs_bits + ((1u << (shift - 1)) - 1u) + ((abs_bits >> shift) & 1u);
  return (r >> shift) - (static_cast<uint32_t>(127 - bias) << mant);
}

MOESPARK_HD uint32_t umin(uint32_t a, uint32_t b) { return a < b ? a : b; }

// ---- bf16 --------------------------------------------------------------------------------------

MOESPARK_HD uint16_t bf16_encode(float x) {
  uint32_t bits = f2u(x);
  if (is_nan_bits(bits & 0x7FFFFFFFu)) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  uint32_t r = bits + 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(r >> 16);
}

MOESPARK_HD float bf16_decode(uint16_t h) { return u2f(static_cast<uint32_t>(h) << 16); }

// Eight bf16 values packed in 16 bytes (a uint4 as loaded, element 0 in the low half of q.x) as floats.
MOESPARK_HD void bf16x8_decode(uint4 q, float (&v)[8]) {
  const uint32_t w[4] = {q.x, q.y, q.z, q.w};
  for (int j = 0; j < 4; ++j) {
    v[2 * j] = u2f(w[j] << 16);
    v[2 * j + 1] = u2f(w[j] & 0xFFFF0000u);
  }
}

// ---- fp16 --------------------------------------------------------------------------------------

MOESPARK_HD uint16_t fp16_encode(float x) {
  uint32_t bits = f2u(x);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x03FFu));
  if (abs == 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00u);
  return static_cast<uint16_t>(sign | umin(round_magnitude(abs, 10, 15), 0x7C00u));
}

MOESPARK_HD float fp16_decode(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1Fu;
  uint32_t m = h & 0x03FFu;
  if (e == 0x1Fu) return u2f(sign | 0x7F800000u | (m << 13));
  if (e == 0) return u2f(sign | f2u(mul_rn(static_cast<float>(m), 0x1p-24f)));
  return u2f(sign | ((e + 112u) << 23) | (m << 13));
}

// ---- FP8 E4M3FN ----------------------------------------------------------------------------------

MOESPARK_HD float e4m3_decode(uint8_t c) {
  uint32_t e = (c >> 3) & 0xFu;
  uint32_t m = c & 7u;
  uint32_t mag;
  if (e == 0xFu && m == 7u) {
    mag = 0x7FC00000u;
  } else if (e == 0) {
    mag = f2u(mul_rn(static_cast<float>(m), 0x1p-9f));
  } else {
    mag = ((e + 120u) << 23) | (m << 20);
  }
  // sign by bits: an arithmetic negation of a NaN may canonicalize it on the device
  return u2f(mag | (static_cast<uint32_t>(c & 0x80u) << 24));
}

// RNE, saturating to ±448 (inf → ±448), NaN → 0x7F (CUDA __NV_SATFINITE).
MOESPARK_HD uint8_t e4m3_encode_sat(float x) {
  uint32_t bits = f2u(x);
  uint32_t sign = (bits >> 24) & 0x80u;
  uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return 0x7F;
  if (abs == 0x7F800000u) return static_cast<uint8_t>(sign | 0x7Eu);
  return static_cast<uint8_t>(sign | umin(round_magnitude(abs, 3, 7), 0x7Eu));
}

// PyTorch cast: RNE; rounded past 448, ±inf and NaN → sign | 0x7F.
MOESPARK_HD uint8_t e4m3_encode_torch(float x) {
  uint32_t bits = f2u(x);
  uint32_t sign = (bits >> 24) & 0x80u;
  uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return static_cast<uint8_t>(sign | 0x7Fu);
  uint32_t code = round_magnitude(abs, 3, 7);
  return static_cast<uint8_t>(sign | (code > 0x7Eu ? 0x7Fu : code));
}

// ---- FP8 E5M2 ------------------------------------------------------------------------------------

MOESPARK_HD float e5m2_decode(uint8_t c) { return fp16_decode(static_cast<uint16_t>(c << 8)); }

// RNE, saturating to ±57344 (inf → ±57344), NaN → 0x7F.
MOESPARK_HD uint8_t e5m2_encode_sat(float x) {
  uint32_t bits = f2u(x);
  uint32_t sign = (bits >> 24) & 0x80u;
  uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return 0x7F;
  if (abs == 0x7F800000u) return static_cast<uint8_t>(sign | 0x7Bu);
  return static_cast<uint8_t>(sign | umin(round_magnitude(abs, 2, 15), 0x7Bu));
}

// PyTorch cast: RNE; overflow and ±inf → ±inf (0x7C), NaN → sign | 0x7F.
MOESPARK_HD uint8_t e5m2_encode_torch(float x) {
  uint32_t bits = f2u(x);
  uint32_t sign = (bits >> 24) & 0x80u;
  uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint8_t>(sign | 0x7Fu);
  if (abs == 0x7F800000u) return static_cast<uint8_t>(sign | 0x7Cu);
  return static_cast<uint8_t>(sign | umin(round_magnitude(abs, 2, 15), 0x7Cu));
}

// ---- FP4 E2M1 ------------------------------------------------------------------------------------

// Value of a 4-bit code: 0, .5, 1, 1.5, 2, 3, 4, 6, then the same negated.
MOESPARK_HD float e2m1_decode(uint32_t code) {
  uint32_t m = code & 7u;
  // Magnitudes as fp32 bits: 0 | 0.5 | 1 | 1.5 | 2 | 3 | 4 | 6.
  uint32_t mag = m == 0 ? 0u : m == 1 ? 0x3F000000u : (((m >> 1) + 126u) << 23) | ((m & 1u) << 22);
  return u2f(mag | ((code & 8u) << 28));
}

// RNE, saturating at ±6; inf → ±6, NaN → 8 (ml_dtypes).
MOESPARK_HD uint32_t e2m1_encode(float x) {
  uint32_t bits = f2u(x);
  uint32_t sign = (bits >> 28) & 0x8u;
  uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return 0x8u;
  if (abs == 0x7F800000u) return sign | 0x7u;
  return sign | umin(round_magnitude(abs, 1, 1), 0x7u);
}

// ---- E8M0 ----------------------------------------------------------------------------------------

MOESPARK_HD float e8m0_decode(uint8_t b) { return b == 0xFF ? u2f(0x7FC00000u) : pow2f(static_cast<int>(b) - 127); }

// PyTorch's float → float8_e8m0fnu cast (E8m0.encodeTorch).
MOESPARK_HD uint8_t e8m0_encode_torch(float x) {
  uint32_t bits = f2u(x);
  uint32_t exponent = (bits >> 23) & 0xFFu;
  if (exponent == 0xFFu) return 0xFF;
  bool guard = (bits & 0x400000u) != 0;
  bool round_or_sticky = (bits & 0x3FFFFFu) != 0;
  if (guard && (round_or_sticky || exponent > 0)) exponent++;
  return static_cast<uint8_t>(exponent);
}

// ---- block-format scale rules --------------------------------------------------------------------

// NVFP4 block scale code: e4m3_sat(block_amax / (6 · global_scale)), 0/NaN → 1.0 (Nvfp4.blockScale).
MOESPARK_HD uint8_t nvfp4_block_scale(float block_amax, float global_scale) {
  float s = div_rn(block_amax, mul_rn(6.0f, global_scale));
  if (s == 0.0f || s != s) s = 1.0f;
  return e4m3_encode_sat(s);
}

// MX shared-scale code for a block's amax (Mxfp.sharedScale); emax = 2 (E2M1), 8 (E4M3), 15 (E5M2).
MOESPARK_HD uint8_t mx_shared_scale(int emax, float amax) {
  uint32_t abs = f2u(amax) & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return 0xFF;
  if (abs == 0) return 0;
  int e = floor_log2(amax) - emax;
  if (e < -127) e = -127;
  return static_cast<uint8_t>(e + 127);
}

// Paddle ComputeScale for block FP8 (BlockFp8.quantScale): the quantization scale s.
MOESPARK_HD float fp8_quant_scale(float amax, bool pow2) {
  if (amax == 0.0f) return 1.0f;
  float s = div_rn(448.0f, amax);
  if ((f2u(s) & 0x7FFFFFFFu) == 0x7F800000u) return pow2 ? 0x1p127f : 0x1.FEp127f;
  if (s == 0.0f) return 0.0f;
  if (pow2) return pow2f(floor_log2(s));
  return s;
}

// DeepSeek act_quant dequantization scale (BlockFp8.deepSeekScale): max(amax, 1e-4) / 448, ue8m0 →
// 2^ceil(log2 s).
MOESPARK_HD float fp8_deepseek_scale(float amax, bool ue8m0) {
  float s = div_rn(amax > 1e-4f ? amax : 1e-4f, 448.0f);
  if (ue8m0 && s > 0.0f && (f2u(s) & 0x7FFFFFFFu) < 0x7F800000u) {
    int f = floor_log2(s);
    s = pow2f(pow2f(f) == s ? f : f + 1);
  }
  return s;
}

// ---- bulk kernels (formats.cu) -----------------------------------------------------------------
// Device pointers, 64-bit element counts, a stream; no allocation. Launch errors are left for the
// caller's check (cudaGetLastError).

// Codec ids shared with org.moespark.formats.FormatsGpu.
enum Codec : int {
  kBf16 = 0,
  kFp16 = 1,
  kE4m3Sat = 2,
  kE4m3Torch = 3,
  kE5m2Sat = 4,
  kE5m2Torch = 5,
  kE2m1 = 6,
  kE8m0Torch = 7,
};

// MX element kinds shared with Mxfp.Kind (ordinal).
enum MxKind : int { kMxfp4 = 0, kMxfp8E4m3 = 1, kMxfp8E5m2 = 2 };

// fp32 src[n] → codes: bf16/fp16 as uint16 [n], FP8/E8M0 as uint8 [n], E2M1 packed uint8 [(n+1)/2].
// Returns false for an unknown codec.
bool launch_encode(int codec, const float* src, void* dst, int64_t n, cudaStream_t stream);
// codes → fp32 dst[n] (E4M3/E5M2 decode ignores sat/torch; E8M0 codec id kE8m0Torch).
bool launch_decode(int codec, const void* src, float* dst, int64_t n, cudaStream_t stream);

// NVFP4 over n elements (n a multiple of 16): packed [n/2], scales [n/16] E4M3.
void launch_nvfp4_quantize(const float* x, int64_t n, float global_scale, uint8_t* packed, uint8_t* scales,
                           cudaStream_t stream);
void launch_nvfp4_dequantize(const uint8_t* packed, const uint8_t* scales, float global_scale, int64_t n, float* out,
                             cudaStream_t stream);

// MX over n elements (n a multiple of 32): elements [n/2] (MXFP4) or [n] bytes, scales [n/32] E8M0.
bool launch_mx_quantize(int kind, const float* x, int64_t n, uint8_t* elements, uint8_t* scales, cudaStream_t stream);
bool launch_mx_dequantize(int kind, const uint8_t* elements, const uint8_t* scales, int64_t n, float* out,
                          cudaStream_t stream);

// Block FP8 scale rules shared with BlockFp8.ScaleRule (ordinal).
enum Fp8Rule : int { kRulePaddle = 0, kRuleDeepSeek = 1 };

// Block FP8 over a row-major [rows, cols] matrix, block_rows × block_cols tiles, scale_inv
// [ceil(rows/br), ceil(cols/bc)] fp32 (dequantization scales). Returns false for an unknown rule.
bool launch_block_fp8_quantize(int rule, const float* x, int64_t rows, int64_t cols, int block_rows, int block_cols,
                               bool pow2, uint8_t* q, float* scale_inv, cudaStream_t stream);
void launch_block_fp8_dequantize(const uint8_t* q, const float* scale_inv, int64_t rows, int64_t cols, int block_rows,
                                 int block_cols, float* out, cudaStream_t stream);

}  // namespace fmt
}  // namespace moespark
