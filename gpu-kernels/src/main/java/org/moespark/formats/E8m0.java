package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * E8M0 / UE8M0 ({@code F8_E8M0}, {@code torch.float8_e8m0fnu}): an unsigned biased exponent, value
 * 2^(b − 127) for b in 0..254, b = 255 is NaN; no sign, no zero, no infinity. Used as the OCP MX block
 * scale, as DeepSeek "ue8m0" power-of-two scales, and (stored as {@code U8}) by GPT-OSS
 * {@code *_scales}.
 *
 * <p>Quantizers do not cast an arbitrary float to E8M0; they compute the exponent themselves
 * ({@link #ofExponent}, {@link #floorLog2}, {@link #ceilLog2}). {@link #encodeTorch} reproduces the
 * PyTorch cast for interoperability: it rounds the magnitude to a power of two by its mantissa (round
 * up iff the first dropped mantissa bit is set: 1.5→2, 3→4, 0.75→1, 5→4, 7→8), drops the sign
 * (−500 → 512), maps 0 to code 0 (2^-127) and inf/NaN to 255; magnitudes from 1.5·2^127 up round to
 * 255. (ml_dtypes maps 0 and negatives to NaN instead.)
 */
public final class E8m0 {
  private E8m0() {}

  public static final int NAN_CODE = 0xFF;
  public static final int BIAS = 127;

  /** Code (0..255, read as unsigned) → 2^(b−127) as fp32 (exact; 2^-127 is an fp32 subnormal), 255 → NaN. */
  public static float decode(byte code) {
    int b = code & 0xFF;
    if (b == 0xFF) {
      return Float.NaN;
    }
    return MiniFloat.pow2(b - BIAS);
  }

  /** The code of 2^e for e in [-127, 127]. */
  public static byte ofExponent(int e) {
    if (e < -127 || e > 127) {
      throw new IllegalArgumentException("E8M0 exponent must be in [-127, 127], got " + e);
    }
    return (byte) (e + BIAS);
  }

  /** The unbiased exponent of a non-NaN code (b − 127). */
  public static int exponent(byte code) {
    int b = code & 0xFF;
    if (b == 0xFF) {
      throw new IllegalArgumentException("E8M0 code 0xFF is NaN and has no exponent");
    }
    return b - BIAS;
  }

  /** The code of a positive power of two p (2^-127 ≤ p ≤ 2^127); anything else is rejected. */
  public static byte ofPowerOfTwo(float p) {
    if (!(p > 0) || Float.isInfinite(p)) {
      throw new IllegalArgumentException("E8M0: expected a positive finite power of two, got " + p);
    }
    int e = MiniFloat.floorLog2(p);
    if (e < -127 || MiniFloat.pow2(e) != p) {
      throw new IllegalArgumentException("E8M0: " + p + " is not a power of two in [2^-127, 2^127]");
    }
    return (byte) (e + BIAS);
  }

  /** floor(log2(a)) for finite a &gt; 0, exact (fp32 subnormals included). */
  public static int floorLog2(float a) {
    if (!(a > 0) || Float.isInfinite(a)) {
      throw new IllegalArgumentException("floorLog2: expected a positive finite value, got " + a);
    }
    return MiniFloat.floorLog2(a);
  }

  /** ceil(log2(a)) for finite a &gt; 0, exact. */
  public static int ceilLog2(float a) {
    int f = floorLog2(a);
    return MiniFloat.pow2(f) == a ? f : f + 1;
  }

  /** PyTorch's {@code float → float8_e8m0fnu} cast (see the class comment). */
  public static byte encodeTorch(float x) {
    int bits = Float.floatToRawIntBits(x);
    int exponent = (bits >>> 23) & 0xFF;
    if (exponent == 0xFF) {
      return (byte) 0xFF;
    }
    // c10 Float8_e8m0fnu: guard = mantissa bit 22, round = bit 21, sticky = bits 20..0, lsb = the
    // implicit bit (1 for normals). Round up when guard && (round || sticky || lsb).
    boolean guard = (bits & 0x400000) != 0;
    boolean roundOrSticky = (bits & 0x3FFFFF) != 0;
    boolean lsb = exponent > 0;
    if (guard && (roundOrSticky || lsb)) {
      exponent++;
    }
    return (byte) exponent;
  }

  public static void encodeTorch(float[] src, int srcOffset, byte[] dst, int dstOffset, int n) {
    ByteCodecs.encode(E8m0::encodeTorch, src, srcOffset, dst, dstOffset, n, "E8m0.encodeTorch");
  }

  public static void decode(byte[] src, int srcOffset, float[] dst, int dstOffset, int n) {
    ByteCodecs.decode(E8m0::decode, src, srcOffset, dst, dstOffset, n, "E8m0.decode");
  }

  public static void encodeTorch(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.encode(E8m0::encodeTorch, src, dst, n, "E8m0.encodeTorch");
  }

  public static void decode(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.decode(E8m0::decode, src, dst, n, "E8m0.decode");
  }

  public static void decode(ByteBuffer src, float[] dst, int dstOffset, int n) {
    ByteCodecs.decode(E8m0::decode, src, dst, dstOffset, n, "E8m0.decode");
  }
}
