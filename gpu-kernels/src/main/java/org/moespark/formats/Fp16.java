package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * IEEE binary16 (1 sign, 5 exponent bits with bias 15, 10 mantissa bits; inf/NaN at exponent 31),
 * carried as {@code short} bit patterns.
 *
 * <p>Encoding rounds to nearest, ties to even, with subnormals (smallest 2^-24); magnitudes from
 * 65520 (the midpoint between 65504 and 2^16, which rounds to even = 2^16) upwards give ±inf. A NaN
 * keeps its sign and top 9 payload bits and is made quiet ({@code 0x7E00 | payload >>> 13}), the
 * analogue of the bf16 rule. Java 17 has no {@code Float.floatToFloat16} (JDK 20), hence this class.
 */
public final class Fp16 {
  private Fp16() {}

  /** fp32 → fp16 bits, round to nearest even. */
  public static short encode(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 16) & 0x8000;
    int abs = bits & 0x7FFFFFFF;
    if (abs > 0x7F800000) {
      return (short) (sign | 0x7E00 | ((abs >>> 13) & 0x03FF));
    }
    if (abs == 0x7F800000) {
      return (short) (sign | 0x7C00);
    }
    int code = MiniFloat.roundMagnitude(abs, 10, 15);
    return (short) (sign | Math.min(code, 0x7C00));
  }

  /** fp16 bits → fp32 (exact). */
  public static float decode(short code) {
    int h = code & 0xFFFF;
    int sign = (h & 0x8000) << 16;
    int e = (h >>> 10) & 0x1F;
    int m = h & 0x03FF;
    if (e == 0x1F) {
      return Float.intBitsToFloat(sign | 0x7F800000 | (m << 13));
    }
    if (e == 0) {
      return Float.intBitsToFloat(sign | Float.floatToRawIntBits(m * 0x1p-24f));  // exact: m < 2^10
    }
    return Float.intBitsToFloat(sign | ((e + 112) << 23) | (m << 13));
  }

  public static float round(float x) {
    return decode(encode(x));
  }

  public static void encode(float[] src, int srcOffset, short[] dst, int dstOffset, int n) {
    Checks.range(src.length, srcOffset, n, "Fp16.encode src");
    Checks.range(dst.length, dstOffset, n, "Fp16.encode dst");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = encode(src[srcOffset + i]);
    }
  }

  public static void decode(short[] src, int srcOffset, float[] dst, int dstOffset, int n) {
    Checks.range(src.length, srcOffset, n, "Fp16.decode src");
    Checks.range(dst.length, dstOffset, n, "Fp16.decode dst");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = decode(src[srcOffset + i]);
    }
  }

  /** n fp32 values (little-endian, from the position) → n fp16 codes. */
  public static void encode(ByteBuffer src, ByteBuffer dst, int n) {
    Checks.count(n, "Fp16.encode");
    ByteBuffer s = Checks.le(src, 4L * n, "Fp16.encode src");
    ByteBuffer d = Checks.le(dst, 2L * n, "Fp16.encode dst");
    Checks.writable(d, "Fp16.encode dst");
    for (int i = 0; i < n; i++) {
      d.putShort(2 * i, encode(s.getFloat(4 * i)));
    }
  }

  /** n fp16 codes (little-endian, from the position) → n fp32 values. */
  public static void decode(ByteBuffer src, ByteBuffer dst, int n) {
    Checks.count(n, "Fp16.decode");
    ByteBuffer s = Checks.le(src, 2L * n, "Fp16.decode src");
    ByteBuffer d = Checks.le(dst, 4L * n, "Fp16.decode dst");
    Checks.writable(d, "Fp16.decode dst");
    for (int i = 0; i < n; i++) {
      d.putFloat(4 * i, decode(s.getShort(2 * i)));
    }
  }

  public static void decode(ByteBuffer src, float[] dst, int dstOffset, int n) {
    Checks.range(dst.length, dstOffset, n, "Fp16.decode dst");
    ByteBuffer s = Checks.le(src, 2L * n, "Fp16.decode src");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = decode(s.getShort(2 * i));
    }
  }
}
