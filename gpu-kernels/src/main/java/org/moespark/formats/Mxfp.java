package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * OCP Microscaling MXFP4 / MXFP8: blocks of {@value #BLOCK} consecutive elements along a row share
 * one E8M0 scale X; value = X · element.
 *
 * <p>Layout of a row-major [rows, cols] matrix (cols a multiple of 32): elements
 * [rows, cols/2] bytes for MXFP4 (two E2M1 codes per byte, element 2k in the low nibble) or
 * [rows, cols] E4M3/E5M2 bytes for MXFP8; scales [rows, cols/32] E8M0 bytes. GPT-OSS stores
 * {@code *_blocks} U8 [E, out, in/32, 16] and {@code *_scales} U8 [E, out, in/32]: exactly this
 * layout with rows = E·out and cols = in (transformers then transposes each expert to [in, out];
 * that transpose is the caller's business).
 *
 * <p>Quantization (OCP MX v1.0 §6.3, microxcaling {@code _quantize_mx}):
 * {@code e = floor(log2(amax)) − emax_elem} (emax 2 for E2M1, 8 for E4M3, 15 for E5M2), clamped to
 * [−127, 127]; elements = saturating RNE of {@code x · 2^-e}. Choices where upstream is loose:
 * floor(log2) is exact (microxcaling's fp32 {@code log2} can round up just below a power of two);
 * elements round to nearest even (microxcaling's default is half-away-from-zero; torch, ModelOpt and
 * CUDA use RNE); an all-zero block gets code 0 (2^-127), as microxcaling's epsilon gives; a block with
 * a NaN or infinite element gets the NaN scale 0xFF (its elements decode to NaN). Because of the floor,
 * the largest elements of a block can saturate (a known MX property).
 */
public final class Mxfp {
  private Mxfp() {}

  /** Elements per scale. */
  public static final int BLOCK = 32;

  /** Element type of an MX format. */
  public enum Kind {
    /** E2M1 elements, packed two per byte. */
    MXFP4(2, 4),
    /** E4M3FN elements (max 448). */
    MXFP8_E4M3(8, 8),
    /** E5M2 elements (max 57344). */
    MXFP8_E5M2(15, 8);

    /** Exponent of the element type's largest normal. */
    public final int emax;
    /** Bits per element. */
    public final int bits;

    Kind(int emax, int bits) {
      this.emax = emax;
      this.bits = bits;
    }

    /** Bytes of elements for n elements (n a multiple of 32). */
    public long elementBytes(long n) {
      return n * bits / 8;
    }

    /** The stable integer id used by the GPU entry points. */
    int id() {
      return ordinal();
    }

    int encode(float x) {
      switch (this) {
        case MXFP4:
          return Fp4E2m1.encode(x);
        case MXFP8_E4M3:
          return Fp8E4m3.encodeSaturating(x) & 0xFF;
        default:
          return Fp8E5m2.encodeSaturating(x) & 0xFF;
      }
    }

    float decode(int code) {
      switch (this) {
        case MXFP4:
          return Fp4E2m1.decode(code);
        case MXFP8_E4M3:
          return Fp8E4m3.decode((byte) code);
        default:
          return Fp8E5m2.decode((byte) code);
      }
    }
  }

  /** The E8M0 scale code of a block with the given amax (see the class comment). */
  public static byte sharedScale(Kind kind, float amax) {
    if (Float.isNaN(amax) || Float.isInfinite(amax)) {
      return (byte) E8m0.NAN_CODE;
    }
    if (amax == 0f) {
      return 0;
    }
    int e = Math.max(MiniFloat.floorLog2(Math.abs(amax)) - kind.emax, -127);
    return (byte) (e + E8m0.BIAS);
  }

  private static void checkShape(int rows, int cols, String what) {
    Checks.shape(rows, cols, what);
    if (cols % BLOCK != 0) {
      throw new IllegalArgumentException(what + ": cols must be a multiple of " + BLOCK + ", got " + cols);
    }
    Checks.toInt((long) rows * cols, what + " rows*cols");
  }

  /**
   * Quantizes a row-major [rows, cols] matrix.
   *
   * @param elements out, {@code kind.elementBytes(rows·cols)} bytes
   * @param scales out, rows·cols/32 E8M0 codes
   */
  public static void quantize(Kind kind, float[] x, int rows, int cols, byte[] elements, byte[] scales) {
    checkShape(rows, cols, "Mxfp.quantize");
    long n = (long) rows * cols;
    Checks.length(x.length, n, "Mxfp.quantize x");
    Checks.length(elements.length, kind.elementBytes(n), "Mxfp.quantize elements");
    Checks.length(scales.length, n / BLOCK, "Mxfp.quantize scales");
    int blocks = (int) (n / BLOCK);
    for (int b = 0; b < blocks; b++) {
      int base = b * BLOCK;
      float amax = 0f;
      boolean nonFinite = false;
      for (int j = 0; j < BLOCK; j++) {
        float v = x[base + j];
        if (Float.isNaN(v) || Float.isInfinite(v)) {
          nonFinite = true;
        }
        float a = Math.abs(v);
        if (a > amax) {
          amax = a;
        }
      }
      byte sc = sharedScale(kind, nonFinite ? Float.NaN : amax);
      scales[b] = sc;
      // x · 2^-e: one correctly rounded multiply by an exact power of two (NaN for the NaN scale).
      float inv = (sc & 0xFF) == E8m0.NAN_CODE ? Float.NaN : MiniFloat.pow2(E8m0.BIAS - (sc & 0xFF));
      for (int j = 0; j < BLOCK; j++) {
        int code = kind.encode(x[base + j] * inv);
        if (kind == Kind.MXFP4) {
          int i = base + j;
          if ((j & 1) == 0) {
            elements[i >>> 1] = (byte) code;
          } else {
            elements[i >>> 1] = (byte) ((elements[i >>> 1] & 0xF) | (code << 4));
          }
        } else {
          elements[base + j] = (byte) code;
        }
      }
    }
  }

  /** Dequantizes into out[0 .. rows·cols). */
  public static void dequantize(Kind kind, byte[] elements, byte[] scales, int rows, int cols, float[] out) {
    dequantize(kind, ByteBuffer.wrap(elements), ByteBuffer.wrap(scales), rows, cols, out);
  }

  /**
   * Dequantizes from buffers positioned at the elements and the scales (e.g. GPT-OSS
   * {@code *_blocks} / {@code *_scales} mapped from safetensors): value = element · 2^(scale − 127),
   * one fp32 multiply (exact unless the result is an fp32 subnormal or overflows). NaN results (NaN
   * scale 0xFF or an FP8 NaN element) are the canonical quiet NaN 0x7FC00000.
   */
  public static void dequantize(Kind kind, ByteBuffer elements, ByteBuffer scales, int rows, int cols, float[] out) {
    checkShape(rows, cols, "Mxfp.dequantize");
    long n = (long) rows * cols;
    ByteBuffer e = Checks.le(elements, kind.elementBytes(n), "Mxfp.dequantize elements");
    ByteBuffer s = Checks.le(scales, n / BLOCK, "Mxfp.dequantize scales");
    Checks.length(out.length, n, "Mxfp.dequantize out");
    int blocks = (int) (n / BLOCK);
    for (int b = 0; b < blocks; b++) {
      float scale = E8m0.decode(s.get(b));
      int base = b * BLOCK;
      if (kind == Kind.MXFP4) {
        for (int j = 0; j < BLOCK / 2; j++) {
          int v = e.get(b * (BLOCK / 2) + j);
          out[base + 2 * j] = MiniFloat.canonicalNaN(Fp4E2m1.decode(v) * scale);
          out[base + 2 * j + 1] = MiniFloat.canonicalNaN(Fp4E2m1.decode(v >>> 4) * scale);
        }
      } else if (kind == Kind.MXFP8_E4M3) {
        for (int j = 0; j < BLOCK; j++) {
          out[base + j] = MiniFloat.canonicalNaN(Fp8E4m3.decode(e.get(base + j)) * scale);
        }
      } else {
        for (int j = 0; j < BLOCK; j++) {
          out[base + j] = MiniFloat.canonicalNaN(Fp8E5m2.decode(e.get(base + j)) * scale);
        }
      }
    }
  }
}
