package org.moespark.testing;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The one place where numeric tolerances live, keyed by the dtype of the computation. Data movement
 * and index maps are never compared with a tolerance: use {@link #assertBitEqual}.
 */
public enum Tolerance {
  /** fp32 weights and fp32 compute (reductions in a different order than the reference). */
  FP32(1e-5),
  /** bf16 weights or activations (8 mantissa bits). */
  BF16(2e-2),
  /** fp16 (11 mantissa bits). */
  FP16(2e-3),
  /**
   * The same e4m3 products summed two ways (an FP8 GEMM against its own CPU definition): the FP8 tensor
   * core adds inside each 128-k block in its own order with reduced internal precision.
   */
  FP8_GEMM(2e-3),
  /** FP8 e4m3 activations or weights. */
  FP8(8e-2),
  /** FP4 (MXFP4 / NVFP4) weights. */
  FP4(1.5e-1),
  /**
   * A whole MoE layer with FP4 weights against the unquantized layer: three quantized matrices in sequence (gate
   * and up through the activation, then down), each ~0.1 relative RMS error (one GEMM: {@link #FP4}'s case), so
   * about √3 · 0.1; measured 0.16-0.20 on the H100.
   */
  FP4_LAYER(2.5e-1);

  /** Maximum relative error, measured as ||a-b|| / max(||b||, tiny) (DeepGEMM-style norm metric). */
  public final double relative;

  Tolerance(double relative) {
    this.relative = relative;
  }

  /** ||actual - expected||_2 / ||expected||_2 (0 when both are all-zero). */
  public static double relativeError(float[] actual, float[] expected) {
    if (actual.length != expected.length) {
      throw new AssertionError("length mismatch: expected " + expected.length + ", got " + actual.length);
    }
    double num = 0;
    double den = 0;
    for (int i = 0; i < actual.length; i++) {
      double d = (double) actual[i] - expected[i];
      num += d * d;
      den += (double) expected[i] * expected[i];
    }
    if (den == 0) {
      return Math.sqrt(num);
    }
    return Math.sqrt(num / den);
  }

  /** Asserts the relative error is within this tolerance, and that there is no NaN where the expected has none. */
  public void assertClose(float[] actual, float[] expected, String what) {
    for (int i = 0; i < actual.length && i < expected.length; i++) {
      if (Float.isNaN(actual[i]) != Float.isNaN(expected[i])) {
        fail(what + ": NaN mismatch at " + i + ": expected " + expected[i] + ", got " + actual[i]);
      }
    }
    double err = relativeError(actual, expected);
    if (!(err <= relative)) {
      fail(String.format("%s: relative error %.3e exceeds the %s tolerance %.1e", what, err, name(), relative));
    }
  }

  /** Bit-for-bit equality of float arrays (NaN payloads included), naming the first difference. */
  public static void assertBitEqual(float[] actual, float[] expected, String what) {
    if (actual.length != expected.length) {
      fail(what + ": length mismatch: expected " + expected.length + ", got " + actual.length);
    }
    for (int i = 0; i < actual.length; i++) {
      if (Float.floatToRawIntBits(actual[i]) != Float.floatToRawIntBits(expected[i])) {
        fail(String.format("%s: first difference at %d: expected %s (0x%08x), got %s (0x%08x)", what, i, expected[i],
            Float.floatToRawIntBits(expected[i]), actual[i], Float.floatToRawIntBits(actual[i])));
      }
    }
  }

  /**
   * Two 16-bit row-major outputs of row stride {@code ldc} are equal bit for bit (the first difference named by row
   * and column), and in {@code actual} the elements past {@code cols} in every row still hold {@code untouched} (the
   * poison written before the run: nothing was stored past the output's columns).
   */
  public static void assertBitEqualRows(short[] actual, short[] expected, long ldc, int cols, short untouched,
      String what) {
    if (actual.length != expected.length) {
      fail(what + ": length mismatch: expected " + expected.length + ", got " + actual.length);
    }
    long gap = 0;
    for (int i = 0; i < actual.length; i++) {
      long r = i / ldc;
      if (actual[i] != expected[i]) {
        fail(String.format("%s: first difference at row %d, column %d: expected 0x%04x, got 0x%04x", what, r,
            i - r * ldc, expected[i], actual[i]));
      }
      if (i - r * ldc >= cols) {
        gap++;
        if (actual[i] != untouched) {
          fail(String.format("%s: element %d (row %d, column %d) past the %d columns was written: 0x%04x", what, i, r,
              i - r * ldc, cols, actual[i]));
        }
      }
    }
    if (gap != actual.length / ldc * (ldc - cols)) {
      fail(what + ": " + gap + " gap elements checked, expected " + actual.length / ldc * (ldc - cols));
    }
  }
}
