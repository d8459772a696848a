package org.moespark.layer;

import org.moespark.formats.Bf16;
import org.moespark.formats.Fp4E2m1;
import org.moespark.formats.Fp8E4m3;

/**
 * The conversions the layer's inner loops use, as thin static helpers over {@code org.moespark.formats}
 * (one place for the layer's rounding rules: bf16 RNE, TensorRT's saturating FP8 Q/DQ, FP4 E2M1).
 */
final class LayerNumerics {
  private LayerNumerics() {}

  /** fp32 → bf16 → fp32, round-to-nearest-even (torch's conversion); NaN stays NaN, overflow → ±inf. */
  static float bf16(float x) {
    return Bf16.round(x);
  }

  /** Rounds every element of {@code a[off, off+n)} to bf16 in place. */
  static void bf16InPlace(float[] a, int off, int n) {
    for (int i = off, end = off + n; i < end; i++) {
      a[i] = Bf16.round(a[i]);
    }
  }

  static float e4m3Decode(int code) {
    return Fp8E4m3.decode((byte) code);
  }

  /** fp32 → e4m3fn code (0..255), RNE, saturating to ±448 (inf → ±448), NaN → 0x7F. */
  static int e4m3EncodeSaturating(float x) {
    return Fp8E4m3.encodeSaturating(x) & 0xFF;
  }

  /**
   * TensorRT static FP8 quantize-dequantize: {@code DQ(Q(x, s)) = e4m3(clamp(rne(x / s), ±448)) · s}.
   */
  static float fp8QuantDequant(float x, float scale) {
    return Fp8E4m3.decode(Fp8E4m3.encodeSaturating(x / scale)) * scale;
  }

  static float e2m1Decode(int code) {
    return Fp4E2m1.decode(code);
  }

  /** fp32 → e2m1 code (0..15), RNE, saturating to ±6 (inf → ±6); callers handle NaN first. */
  static int e2m1EncodeSaturating(float x) {
    return Fp4E2m1.encode(x);
  }

  static float sigmoid(float x) {
    return (float) (1.0 / (1.0 + Math.exp(-(double) x)));
  }
}
