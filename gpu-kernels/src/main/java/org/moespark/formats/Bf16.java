package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * bfloat16 (1 sign, 8 exponent bits with bias 127, 7 mantissa bits): the upper half of an fp32.
 * Codes are carried as {@code short} bit patterns.
 *
 * <p>Encoding rounds to nearest, ties to even, like torch and CUDA {@code __float2bfloat16}; overflow
 * goes to ±inf (FLT_MAX encodes to 0x7F80). A NaN keeps its sign and top 7 payload bits and is made
 * quiet ({@code (bits >>> 16) | 0x0040}). Upstream NaN payloads differ by device (torch CPU gave
 * 0xFFFF, CUDA 0x7FFF), so callers comparing with upstream compare NaN-ness, not bits; our CPU and
 * GPU paths give identical bits.
 *
 * <p>Bulk methods take arrays with offsets, or {@link ByteBuffer}s read and written little-endian
 * from their current position (positions are left unchanged; heap and direct buffers both work).
 */
public final class Bf16 {
  private Bf16() {}

  /** fp32 → bf16 bits, round to nearest even. */
  public static short encode(float x) {
    int bits = Float.floatToRawIntBits(x);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int r = bits + 0x7FFF + ((bits >>> 16) & 1);
    return (short) (r >>> 16);
  }

  /** bf16 bits → fp32 (exact). */
  public static float decode(short code) {
    return Float.intBitsToFloat((code & 0xFFFF) << 16);
  }

  /** Rounds x to the nearest bf16 value and returns it as fp32 ({@code decode(encode(x))}). */
  public static float round(float x) {
    return decode(encode(x));
  }

  public static void encode(float[] src, int srcOffset, short[] dst, int dstOffset, int n) {
    Checks.range(src.length, srcOffset, n, "Bf16.encode src");
    Checks.range(dst.length, dstOffset, n, "Bf16.encode dst");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = encode(src[srcOffset + i]);
    }
  }

  public static void decode(short[] src, int srcOffset, float[] dst, int dstOffset, int n) {
    Checks.range(src.length, srcOffset, n, "Bf16.decode src");
    Checks.range(dst.length, dstOffset, n, "Bf16.decode dst");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = decode(src[srcOffset + i]);
    }
  }

  /** n fp32 values (4 bytes each) from {@code src} → n bf16 codes (2 bytes each) into {@code dst}. */
  public static void encode(ByteBuffer src, ByteBuffer dst, int n) {
    Checks.count(n, "Bf16.encode");
    ByteBuffer s = Checks.le(src, 4L * n, "Bf16.encode src");
    ByteBuffer d = Checks.le(dst, 2L * n, "Bf16.encode dst");
    Checks.writable(d, "Bf16.encode dst");
    for (int i = 0; i < n; i++) {
      d.putShort(2 * i, encode(s.getFloat(4 * i)));
    }
  }

  /** n bf16 codes (2 bytes each) from {@code src} → n fp32 values (4 bytes each) into {@code dst}. */
  public static void decode(ByteBuffer src, ByteBuffer dst, int n) {
    Checks.count(n, "Bf16.decode");
    ByteBuffer s = Checks.le(src, 2L * n, "Bf16.decode src");
    ByteBuffer d = Checks.le(dst, 4L * n, "Bf16.decode dst");
    Checks.writable(d, "Bf16.decode dst");
    for (int i = 0; i < n; i++) {
      d.putFloat(4 * i, decode(s.getShort(2 * i)));
    }
  }

  /** n bf16 codes from {@code src} → fp32 into {@code dst[dstOffset ..]} (checkpoint loading). */
  public static void decode(ByteBuffer src, float[] dst, int dstOffset, int n) {
    Checks.range(dst.length, dstOffset, n, "Bf16.decode dst");
    ByteBuffer s = Checks.le(src, 2L * n, "Bf16.decode src");
    for (int i = 0; i < n; i++) {
      dst[dstOffset + i] = decode(s.getShort(2 * i));
    }
  }
}
