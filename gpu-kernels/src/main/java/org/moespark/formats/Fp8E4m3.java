package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * FP8 E4M3FN ({@code F8_E4M3}, {@code torch.float8_e4m3fn}): 1 sign, 4 exponent bits with bias 7,
 * 3 mantissa bits, no infinities, NaN only as S.1111.111 (0x7F / 0xFF). Largest finite ±448 (0x7E),
 * smallest normal 2^-6 (0x08), smallest subnormal 2^-9 (0x01).
 *
 * <p>Both rounding rules are round-to-nearest-even on the 3-bit mantissa (subnormals included);
 * they differ only past 448:
 * <ul>
 *   <li>{@link #encodeSaturating}: CUDA {@code __NV_SATFINITE} / PTX {@code cvt.rn.satfinite}, and
 *       TensorRT Quantize. Anything whose rounded magnitude exceeds 448, ±inf included, becomes
 *       ±448; NaN becomes 0x7F. This is what kernels (Paddle, TransformerEngine) produce and what
 *       our quantizers use.</li>
 *   <li>{@link #encodeTorch}: PyTorch's (and ml_dtypes') cast. 464 (the tie between 448 and the
 *       non-existent 480) rounds to 448; anything that rounds past 448 (465, 480, 1e4, ±inf) becomes
 *       NaN with the input's sign (0x7F / 0xFF), NaN becomes sign | 0x7F. (The Paddle CPU fallback
 *       copied from c10 reads "≥ 480 → NaN", but its rounding path also gives 0x7F for 465..479,
 *       which matches the measured torch behaviour implemented here.)</li>
 * </ul>
 */
public final class Fp8E4m3 {
  private Fp8E4m3() {}

  /** Largest finite magnitude. */
  public static final float MAX = 448f;
  /** Code of +448. */
  public static final byte MAX_CODE = 0x7E;
  /** Code of the positive NaN. */
  public static final byte NAN_CODE = 0x7F;

  private static final float[] DECODE = new float[256];

  static {
    for (int c = 0; c < 256; c++) {
      DECODE[c] = decodeBits(c);
    }
  }

  private static float decodeBits(int c) {
    int e = (c >>> 3) & 0xF;
    int m = c & 7;
    int mag;
    if (e == 0xF && m == 7) {
      mag = 0x7FC00000;
    } else if (e == 0) {
      mag = Float.floatToRawIntBits(m * 0x1p-9f);  // exact
    } else {
      mag = ((e + 120) << 23) | (m << 20);
    }
    // the sign is set by bits: negating a NaN arithmetically is not bit-defined on every device
    return Float.intBitsToFloat(mag | ((c & 0x80) << 24));
  }

  /** Code → fp32 (exact; 0x7F/0xFF → NaN). */
  public static float decode(byte code) {
    return DECODE[code & 0xFF];
  }

  /** fp32 → code, RNE, saturating to ±448 (inf → ±448), NaN → 0x7F. */
  public static byte encodeSaturating(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 24) & 0x80;
    int abs = bits & 0x7FFFFFFF;
    if (abs > 0x7F800000) {
      return NAN_CODE;
    }
    if (abs == 0x7F800000) {
      return (byte) (sign | 0x7E);
    }
    int code = MiniFloat.roundMagnitude(abs, 3, 7);
    return (byte) (sign | Math.min(code, 0x7E));
  }

  /** fp32 → code with PyTorch cast semantics: RNE; rounded past 448, ±inf and NaN → sign | 0x7F. */
  public static byte encodeTorch(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 24) & 0x80;
    int abs = bits & 0x7FFFFFFF;
    if (abs >= 0x7F800000) {
      return (byte) (sign | 0x7F);
    }
    int code = MiniFloat.roundMagnitude(abs, 3, 7);
    return (byte) (sign | (code > 0x7E ? 0x7F : code));
  }

  public static boolean isNaN(byte code) {
    return (code & 0x7F) == 0x7F;
  }

  public static void encodeSaturating(float[] src, int srcOffset, byte[] dst, int dstOffset, int n) {
    ByteCodecs.encode(Fp8E4m3::encodeSaturating, src, srcOffset, dst, dstOffset, n, "Fp8E4m3.encodeSaturating");
  }

  public static void encodeTorch(float[] src, int srcOffset, byte[] dst, int dstOffset, int n) {
    ByteCodecs.encode(Fp8E4m3::encodeTorch, src, srcOffset, dst, dstOffset, n, "Fp8E4m3.encodeTorch");
  }

  public static void decode(byte[] src, int srcOffset, float[] dst, int dstOffset, int n) {
    ByteCodecs.decode(Fp8E4m3::decode, src, srcOffset, dst, dstOffset, n, "Fp8E4m3.decode");
  }

  /** n fp32 (little-endian, from the position) → n codes. */
  public static void encodeSaturating(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.encode(Fp8E4m3::encodeSaturating, src, dst, n, "Fp8E4m3.encodeSaturating");
  }

  public static void encodeTorch(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.encode(Fp8E4m3::encodeTorch, src, dst, n, "Fp8E4m3.encodeTorch");
  }

  /** n codes (from the position) → n fp32 (little-endian). */
  public static void decode(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.decode(Fp8E4m3::decode, src, dst, n, "Fp8E4m3.decode");
  }

  public static void decode(ByteBuffer src, float[] dst, int dstOffset, int n) {
    ByteCodecs.decode(Fp8E4m3::decode, src, dst, dstOffset, n, "Fp8E4m3.decode");
  }
}
