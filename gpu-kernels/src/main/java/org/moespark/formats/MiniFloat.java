package org.moespark.formats;

/**
 * Round-to-nearest-even onto the small IEEE-style binary formats (fp16, FP8 E4M3/E5M2, FP4 E2M1).
 * One routine for all of them so that every encoder rounds the same way; overflow, infinity and NaN
 * rules differ per format and stay in each format's class. {@code formats.cuh} has the same routine
 * ({@code round_magnitude}) for the GPU, operation for operation.
 */
final class MiniFloat {
  private MiniFloat() {}

  /**
   * Rounds a finite, non-negative fp32 magnitude (raw bits, sign cleared, not NaN/inf) to the format
   * with {@code mant} mantissa bits and exponent bias {@code bias}, ties to even, subnormals included.
   * Returns the magnitude code {@code exponentField << mant | mantissa} with no overflow handling: a
   * value past the largest finite code comes back as a larger code, which the caller maps to its
   * saturation, infinity or NaN.
   */
  static int roundMagnitude(int absBits, int mant, int bias) {
    int minNormalExp = 1 - bias;
    if (absBits < ((minNormalExp + 127) << 23)) {
      // Below the format's smallest normal: a multiple of 2^(minNormalExp - mant). Scaling up by a
      // power of two is exact (also from fp32 subnormals) and rint rounds half to even; a result of
      // 2^mant is the smallest normal code, which is correct.
      float scaled = Float.intBitsToFloat(absBits) * Float.intBitsToFloat((127 + mant - minNormalExp) << 23);
      return (int) Math.rint(scaled);
    }
    int shift = 23 - mant;
    int r = absBits + ((1 << (shift - 1)) - 1) + ((absBits >>> shift) & 1);
    return (r >>> shift) - ((127 - bias) << mant);
  }

  /**
   * NaN results of fp32 arithmetic carry payloads that differ between the JVM (x86 keeps an operand's
   * payload) and the GPU (canonical 0x7FFFFFFF). Dequantization outputs pass through this so that
   * every NaN is the canonical quiet NaN 0x7FC00000 on both sides.
   */
  static float canonicalNaN(float v) {
    return v != v ? Float.NaN : v;
  }

  /** 2^k as a float for k in [-149, 127] (exact; subnormal below -126). */
  static float pow2(int k) {
    if (k >= -126) {
      return Float.intBitsToFloat((k + 127) << 23);
    }
    return Float.intBitsToFloat(1 << (k + 149));
  }

  /** floor(log2(a)) for a finite a &gt; 0 (exact, also for fp32 subnormals). */
  static int floorLog2(float a) {
    int bits = Float.floatToRawIntBits(a) & 0x7FFFFFFF;
    int e = bits >>> 23;
    if (e != 0) {
      return e - 127;
    }
    return (31 - Integer.numberOfLeadingZeros(bits)) - 149;
  }
}
