package org.moespark.model;

/**
 * IEEE binary16 and bfloat16 conversions (Java 17 has neither; models-and-formats.md §3.1–3.2).
 * Encoders round to nearest even, like torch; NaN stays a quiet NaN.
 */
final class HalfFloats {
  private HalfFloats() {}

  static float bf16ToFloat(int bits16) {
    return Float.intBitsToFloat((bits16 & 0xFFFF) << 16);
  }

  static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int r = bits + 0x7FFF + ((bits >>> 16) & 1);
    return (short) (r >>> 16);
  }

  static float f16ToFloat(int bits16) {
    int h = bits16 & 0xFFFF;
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1F;
    int man = h & 0x3FF;
    if (exp == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (man << 13));
    }
    if (exp == 0) {
      // zero or subnormal: man * 2^-24
      float v = man * 0x1p-24f;
      return sign != 0 ? -v : v;
    }
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (man << 13));
  }

  static short floatToF16(float f) {
    int bits = Float.floatToRawIntBits(f);
    int sign = (bits >>> 16) & 0x8000;
    int exp = (bits >>> 23) & 0xFF;
    int man = bits & 0x7FFFFF;
    if (exp == 0xFF) {
      return (short) (sign | 0x7C00 | (man != 0 ? 0x200 | (man >>> 13) : 0));
    }
    int e = exp - 127 + 15;
    if (e >= 0x1F) {
      return (short) (sign | 0x7C00);
    }
    if (e <= 0) {
      if (e < -10) {
        return (short) sign; // rounds to zero (below half of the smallest subnormal)
      }
      int m = man | 0x800000; // implicit bit
      int shift = 14 - e; // 24-bit significand down to a subnormal 10-bit field
      int half = 1 << (shift - 1);
      int rounded = m >>> shift;
      int rest = m & ((1 << shift) - 1);
      if (rest > half || (rest == half && (rounded & 1) == 1)) {
        rounded++;
      }
      return (short) (sign | rounded);
    }
    int rounded = (e << 10) | (man >>> 13);
    int rest = man & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (rounded & 1) == 1)) {
      rounded++; // may carry into the exponent, up to infinity: correct
    }
    return (short) (sign | rounded);
  }
}
