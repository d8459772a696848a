package org.moespark.ops;

/**
 * bf16 conversions used by the TE permutation ops (spec models-and-formats §3.1). bf16 values travel
 * as {@code short} bit patterns (the upper 16 bits of an IEEE fp32).
 *
 * <p>Stop-gap: to be replaced by {@code org.moespark.formats.Bf16} once that lands on main; the two
 * must agree bit for bit (TeBf16Test pins the spec's test vectors).
 */
final class TeBf16 {
  private TeBf16() {}

  /** Exact widening of bf16 bits to fp32. */
  static float toFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** fp32 to bf16 with round-to-nearest-even (CUDA {@code __float2bfloat16}); NaN stays a quiet NaN. */
  static short fromFloat(float value) {
    int bits = Float.floatToRawIntBits(value);
    if (Float.isNaN(value)) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
    return (short) (rounded >>> 16);
  }
}
