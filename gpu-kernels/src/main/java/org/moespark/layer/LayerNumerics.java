package org.moespark.layer;

/**
 * The few number-format conversions the layer needs on its own hot path (bf16 rounding, FP8 e4m3
 * saturating quantization, FP4 e2m1). The full format library is {@code org.moespark.formats}; these
 * are kept here, small and package-private, so that the layer's inner loops do not go through
 * byte-level codecs.
 */
final class LayerNumerics {
  private LayerNumerics() {}

  /** Largest finite FP8 e4m3fn magnitude. */
  static final float E4M3_MAX = 448f;

  private static final float[] E4M3_DECODE = new float[256];
  /** E2M1 code → value (low 3 bits magnitude, bit 3 sign). */
  static final float[] E2M1 = {0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f};

  static {
    for (int c = 0; c < 256; c++) {
      int e = (c >>> 3) & 0xF;
      int m = c & 7;
      float v;
      if (e == 15 && m == 7) {
        v = Float.NaN;
      } else if (e == 0) {
        v = m * 0x1p-9f;
      } else {
        v = Math.scalb(1f + m / 8f, e - 7);
      }
      E4M3_DECODE[c] = (c & 0x80) != 0 ? -v : v;
    }
  }

  /** fp32 → bf16 → fp32, round-to-nearest-even (torch's conversion); NaN stays NaN, overflow → ±inf. */
  static float bf16(float x) {
    int bits = Float.floatToRawIntBits(x);
    if (Float.isNaN(x)) {
      return Float.intBitsToFloat((bits | 0x00400000) & 0xFFFF0000);
    }
    int r = bits + 0x7FFF + ((bits >>> 16) & 1);
    return Float.intBitsToFloat(r & 0xFFFF0000);
  }

  /** Rounds every element of {@code a[off, off+n)} to bf16 in place. */
  static void bf16InPlace(float[] a, int off, int n) {
    for (int i = off, end = off + n; i < end; i++) {
      a[i] = bf16(a[i]);
    }
  }

  static float e4m3Decode(int code) {
    return E4M3_DECODE[code & 0xFF];
  }

  /**
   * fp32 → e4m3fn code, round-to-nearest-even with saturation to ±448 (CUDA {@code __NV_SATFINITE},
   * TensorRT's quantize clamp); ±inf → ±448; NaN → 0x7F.
   */
  static int e4m3EncodeSaturating(float x) {
    if (Float.isNaN(x)) {
      return 0x7F;
    }
    int sign = (Float.floatToRawIntBits(x) >>> 31) << 7;
    double a = Math.min(Math.abs((double) x), E4M3_MAX);
    int code;
    if (a < 0x1p-6) {
      code = (int) Math.rint(a * 0x1p9); // subnormal grid 2^-9; 8 rounds up into the min normal 0x08
    } else {
      int e = Math.getExponent(a);
      int mant = (int) Math.rint((a / Math.scalb(1.0, e) - 1.0) * 8.0);
      if (mant == 8) {
        e++;
        mant = 0;
      }
      code = ((e + 7) << 3) | mant;
    }
    return sign | code;
  }

  /**
   * TensorRT static FP8 quantize-dequantize: {@code DQ(Q(x, s)) = e4m3(clamp(rne(x / s), ±448)) · s}.
   */
  static float fp8QuantDequant(float x, float scale) {
    return e4m3Decode(e4m3EncodeSaturating(x / scale)) * scale;
  }

  /**
   * fp32 → e2m1 code, round-to-nearest-even with saturation to ±6 (ModelOpt / ml_dtypes thresholds);
   * ±inf → ±6. NaN has no e2m1 encoding: callers handle it first.
   */
  static int e2m1EncodeSaturating(float x) {
    int sign = (Float.floatToRawIntBits(x) >>> 31) << 3;
    float a = Math.abs(x);
    int m;
    if (a <= 0.25f) {
      m = 0;
    } else if (a < 0.75f) {
      m = 1;
    } else if (a <= 1.25f) {
      m = 2;
    } else if (a < 1.75f) {
      m = 3;
    } else if (a <= 2.5f) {
      m = 4;
    } else if (a < 3.5f) {
      m = 5;
    } else if (a <= 5f) {
      m = 6;
    } else {
      m = 7;
    }
    return sign | m;
  }

  static float sigmoid(float x) {
    return (float) (1.0 / (1.0 + Math.exp(-(double) x)));
  }
}
