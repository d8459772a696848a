package org.moespark.ops;

/**
 * Minimal bf16 and FP8 e4m3 conversions for the Paddle operators, private to this package.
 *
 * <p>TEMPORARY: {@code org.moespark.formats} ({@code Bf16}, {@code Fp8E4m3}) was not on main when
 * these operators were written; replace the bodies with calls to it once it lands. Semantics are
 * the kernel ones of moe-ops-semantics.md §1: bf16 is round-to-nearest-even (NaN stays NaN), e4m3 is
 * round-to-nearest-even with SATFINITE (|x| rounding above 448 becomes ±448, ±inf → ±448, NaN → NaN
 * 0x7F), as CUDA's {@code __nv_fp8_e4m3(float)} and {@code cvt.rn.satfinite.e4m3x2.f32}.
 */
final class PaddleNumerics {
  private PaddleNumerics() {}

  /** bf16 bits → fp32 (exact). */
  static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** fp32 → bf16 bits, round to nearest even; NaN → a quiet NaN. */
  static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int r = bits + 0x7FFF + ((bits >>> 16) & 1);
    return (short) (r >>> 16);
  }

  /** bf16 round trip of an fp32 value. */
  static float roundBf16(float f) {
    return bf16ToFloat(floatToBf16(f));
  }

  private static final float[] E4M3 = new float[256];

  static {
    for (int b = 0; b < 256; b++) {
      int sign = (b >> 7) & 1;
      int exp = (b >> 3) & 0xF;
      int man = b & 7;
      float v;
      if (exp == 0xF && man == 7) {
        v = Float.NaN;
      } else if (exp == 0) {
        v = Math.scalb((float) man, -9);
      } else {
        v = Math.scalb((float) (8 + man), exp - 10);
      }
      E4M3[b] = sign == 1 ? -v : v;
    }
  }

  /** e4m3 bits → fp32 (exact; 0x7F / 0xFF are NaN). */
  static float e4m3ToFloat(byte bits) {
    return E4M3[bits & 0xFF];
  }

  /** fp32 → e4m3 bits, round to nearest even, saturating to ±448; NaN → 0x7F. */
  static byte floatToE4m3Saturating(float f) {
    if (Float.isNaN(f)) {
      return 0x7F;
    }
    int sign = Float.floatToRawIntBits(f) < 0 ? 0x80 : 0;
    float a = Math.abs(f);
    if (a >= 448f) {
      return (byte) (sign | 0x7E);
    }
    // Quantum of the target binade: normals (a >= 2^-6) have 3 mantissa bits, subnormals step 2^-9.
    int e = a < 0x1p-6f ? -6 : Math.getExponent(a);
    float quantum = Math.scalb(1f, e - 3);
    // a / quantum is exact (power-of-two scaling in range); rint is round-half-even.
    float q = (float) Math.rint(a / quantum);
    float rounded = q * quantum;
    if (rounded > 448f) {
      return (byte) (sign | 0x7E);
    }
    int code;
    if (rounded < 0x1p-6f) {
      code = (int) Math.rint(rounded / 0x1p-9f); // subnormal (or 8 = min normal, same encoding)
    } else {
      int re = Math.getExponent(rounded);
      int m = (int) (rounded / Math.scalb(1f, re - 3)) - 8;
      code = ((re + 7) << 3) | m;
    }
    return (byte) (sign | code);
  }
}
