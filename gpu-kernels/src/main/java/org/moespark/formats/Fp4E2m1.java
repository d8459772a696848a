package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * FP4 E2M1 (element of MXFP4 and NVFP4): 1 sign, 2 exponent bits with bias 1, 1 mantissa bit, no
 * inf/NaN. Codes 0..7 = +0, 0.5, 1, 1.5, 2, 3, 4, 6; codes 8..15 the same with the sign set.
 *
 * <p>{@link #encode} matches ModelOpt {@code NVFP4QTensor._cast_fp4} and ml_dtypes
 * {@code float4_e2m1fn}: round to nearest even, saturating at ±6 (ties: 0.25→0, 0.75→1, 1.25→1,
 * 1.75→2, 2.5→2, 3.5→4, 5→4). ±inf → ±6 and NaN → code 8 (−0), as ml_dtypes does; quantizers should
 * deal with non-finite inputs before encoding.
 *
 * <p>Packing (every checkpoint we know: GPT-OSS, ModelOpt, compressed-tensors): two codes per byte,
 * element 2k in the low nibble, element 2k+1 in the high nibble. Packed bulk methods address elements;
 * element offsets must be even (an odd count leaves the last high nibble 0).
 */
public final class Fp4E2m1 {
  private Fp4E2m1() {}

  public static final float MAX = 6f;

  private static final float[] VALUES = {
    0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f
  };

  /** The value of a 4-bit code (only the low 4 bits of {@code code} are read). */
  public static float decode(int code) {
    return VALUES[code & 0xF];
  }

  /** fp32 → 4-bit code (0..15), RNE, saturating at ±6; inf → ±6, NaN → 8. */
  public static int encode(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 28) & 0x8;
    int abs = bits & 0x7FFFFFFF;
    if (abs > 0x7F800000) {
      return 0x8;
    }
    if (abs == 0x7F800000) {
      return sign | 0x7;
    }
    return sign | Math.min(MiniFloat.roundMagnitude(abs, 1, 1), 0x7);
  }

  /** Two codes in one byte: {@code lo} (even element) in bits 0-3, {@code hi} in bits 4-7. */
  public static byte pack(int lo, int hi) {
    return (byte) ((lo & 0xF) | ((hi & 0xF) << 4));
  }

  private static void evenOffset(long offset, String what) {
    if ((offset & 1) != 0) {
      throw new IllegalArgumentException(what + ": packed element offset must be even, got " + offset);
    }
  }

  /** n values → packed codes at element offset {@code dstElement} (even) of {@code dst}. */
  public static void encode(float[] src, int srcOffset, byte[] dst, int dstElement, int n) {
    Checks.range(src.length, srcOffset, n, "Fp4E2m1.encode src");
    evenOffset(dstElement, "Fp4E2m1.encode dst");
    Checks.range(dst.length, dstElement / 2, (n + 1) / 2, "Fp4E2m1.encode dst bytes");
    int b = dstElement / 2;
    for (int i = 0; i + 1 < n; i += 2, b++) {
      dst[b] = pack(encode(src[srcOffset + i]), encode(src[srcOffset + i + 1]));
    }
    if ((n & 1) != 0) {
      dst[b] = pack(encode(src[srcOffset + n - 1]), 0);
    }
  }

  /** n packed codes from element offset {@code srcElement} (even) → fp32. */
  public static void decode(byte[] src, int srcElement, float[] dst, int dstOffset, int n) {
    evenOffset(srcElement, "Fp4E2m1.decode src");
    Checks.range(src.length, srcElement / 2, (n + 1) / 2, "Fp4E2m1.decode src bytes");
    Checks.range(dst.length, dstOffset, n, "Fp4E2m1.decode dst");
    for (int i = 0; i < n; i++) {
      int b = src[srcElement / 2 + i / 2];
      dst[dstOffset + i] = VALUES[(i & 1) == 0 ? b & 0xF : (b >>> 4) & 0xF];
    }
  }

  /** n fp32 (little-endian, from the position) → ceil(n/2) packed bytes. */
  public static void encode(ByteBuffer src, ByteBuffer dst, int n) {
    Checks.count(n, "Fp4E2m1.encode");
    ByteBuffer s = Checks.le(src, 4L * n, "Fp4E2m1.encode src");
    ByteBuffer d = Checks.le(dst, (n + 1L) / 2, "Fp4E2m1.encode dst");
    Checks.writable(d, "Fp4E2m1.encode dst");
    for (int i = 0; i < n; i += 2) {
      int hi = i + 1 < n ? encode(s.getFloat(4 * (i + 1))) : 0;
      d.put(i / 2, pack(encode(s.getFloat(4 * i)), hi));
    }
  }

  /** ceil(n/2) packed bytes (from the position) → n fp32 (little-endian). */
  public static void decode(ByteBuffer src, ByteBuffer dst, int n) {
    Checks.count(n, "Fp4E2m1.decode");
    ByteBuffer s = Checks.le(src, (n + 1L) / 2, "Fp4E2m1.decode src");
    ByteBuffer d = Checks.le(dst, 4L * n, "Fp4E2m1.decode dst");
    Checks.writable(d, "Fp4E2m1.decode dst");
    for (int i = 0; i < n; i++) {
      int b = s.get(i / 2);
      d.putFloat(4 * i, VALUES[(i & 1) == 0 ? b & 0xF : (b >>> 4) & 0xF]);
    }
  }
}
