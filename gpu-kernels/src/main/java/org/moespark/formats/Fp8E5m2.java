package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * FP8 E5M2 ({@code F8_E5M2}, {@code torch.float8_e5m2}): 1 sign, 5 exponent bits with bias 15,
 * 2 mantissa bits, IEEE-like (exponent 31: mantissa 0 = ±inf, else NaN). Largest finite ±57344
 * (0x7B), smallest normal 2^-14, smallest subnormal 2^-16.
 *
 * <p>Both encoders round to nearest even (subnormals included):
 * <ul>
 *   <li>{@link #encodeTorch}: PyTorch's cast (c10 {@code fp8e5m2_from_fp32_value}): overflow
 *       (61440, the midpoint between 57344 and 2^16, and above) and ±inf → ±inf (0x7C / 0xFC);
 *       NaN → sign | 0x7F (ml_dtypes writes 0x7E; both are NaN).</li>
 *   <li>{@link #encodeSaturating}: CUDA {@code __NV_SATFINITE}: overflow and ±inf → ±57344;
 *       NaN → 0x7F.</li>
 * </ul>
 */
public final class Fp8E5m2 {
  private Fp8E5m2() {}

  public static final float MAX = 57344f;
  public static final byte MAX_CODE = 0x7B;
  public static final byte INF_CODE = 0x7C;
  public static final byte NAN_CODE = 0x7F;

  /** Code → fp32 (exact; ±inf and NaN kept). E5M2 is the top byte of an fp16. */
  public static float decode(byte code) {
    return Fp16.decode((short) ((code & 0xFF) << 8));
  }

  public static byte encodeSaturating(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 24) & 0x80;
    int abs = bits & 0x7FFFFFFF;
    if (abs > 0x7F800000) {
      return NAN_CODE;
    }
    if (abs == 0x7F800000) {
      return (byte) (sign | 0x7B);
    }
    int code = MiniFloat.roundMagnitude(abs, 2, 15);
    return (byte) (sign | Math.min(code, 0x7B));
  }

  public static byte encodeTorch(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 24) & 0x80;
    int abs = bits & 0x7FFFFFFF;
    if (abs > 0x7F800000) {
      return (byte) (sign | 0x7F);
    }
    if (abs == 0x7F800000) {
      return (byte) (sign | 0x7C);
    }
    int code = MiniFloat.roundMagnitude(abs, 2, 15);
    return (byte) (sign | Math.min(code, 0x7C));
  }

  public static void encodeSaturating(float[] src, int srcOffset, byte[] dst, int dstOffset, int n) {
    ByteCodecs.encode(Fp8E5m2::encodeSaturating, src, srcOffset, dst, dstOffset, n, "Fp8E5m2.encodeSaturating");
  }

  public static void encodeTorch(float[] src, int srcOffset, byte[] dst, int dstOffset, int n) {
    ByteCodecs.encode(Fp8E5m2::encodeTorch, src, srcOffset, dst, dstOffset, n, "Fp8E5m2.encodeTorch");
  }

  public static void decode(byte[] src, int srcOffset, float[] dst, int dstOffset, int n) {
    ByteCodecs.decode(Fp8E5m2::decode, src, srcOffset, dst, dstOffset, n, "Fp8E5m2.decode");
  }

  public static void encodeSaturating(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.encode(Fp8E5m2::encodeSaturating, src, dst, n, "Fp8E5m2.encodeSaturating");
  }

  public static void encodeTorch(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.encode(Fp8E5m2::encodeTorch, src, dst, n, "Fp8E5m2.encodeTorch");
  }

  public static void decode(ByteBuffer src, ByteBuffer dst, int n) {
    ByteCodecs.decode(Fp8E5m2::decode, src, dst, n, "Fp8E5m2.decode");
  }

  public static void decode(ByteBuffer src, float[] dst, int dstOffset, int n) {
    ByteCodecs.decode(Fp8E5m2::decode, src, dst, dstOffset, n, "Fp8E5m2.decode");
  }
}
