package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.moespark.ops.MoePermuteTest.assertMessage;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.formats.Bf16;
import org.moespark.testing.Tolerance;

class FusedTransposeSplitQuantTest {

  // ------------------------------------------------------------ independent naive reference

  /** e4m3 values of the 256 codes, from the format definition (bias 7, 3 mantissa bits). */
  static final double[] E4M3 = new double[256];

  static {
    for (int c = 0; c < 256; c++) {
      int e = (c >> 3) & 15;
      int m = c & 7;
      double v = e == 0 ? m / 512.0 : Math.pow(2, e - 7) * (1 + m / 8.0);
      E4M3[c] = (c & 0x80) != 0 ? -v : v;
    }
  }

  /** Nearest finite e4m3 code by exhaustive search, ties to the even code, NaN -> 0x7F. */
  static byte refE4m3(float x) {
    if (Float.isNaN(x)) {
      return 0x7F;
    }
    double v = Float.isInfinite(x) ? Math.copySign(1e9, x) : x;
    int best = -1;
    double bestD = Double.POSITIVE_INFINITY;
    for (int c = 0; c < 256; c++) {
      if ((c & 0x7F) == 0x7F || (c & 0x80) != (Math.copySign(1.0, v) < 0 ? 0x80 : 0)) {
        continue; // NaN codes, and the other sign (keeps -0.0 -> 0x80)
      }
      double d = Math.abs(E4M3[c] - v);
      if (d < bestD || (d == bestD && (c & 1) == 0)) {
        best = c;
        bestD = d;
      }
    }
    return (byte) best;
  }

  /** Largest power of two <= s, by repeated doubling/halving in double. */
  static float floorPow2(float s) {
    double p = 1;
    while (p * 2 <= s) {
      p *= 2;
    }
    while (p > s) {
      p /= 2;
    }
    return (float) p;
  }

  static FusedTransposeSplitQuant.Result reference(float[] x, int m, int k, int[] tpe, boolean pow2) {
    byte[][] outs = new byte[tpe.length][];
    float[][] scales = new float[tpe.length][];
    int start = 0;
    for (int i = 0; i < tpe.length; i++) {
      int n = tpe[i];
      outs[i] = new byte[k * n];
      scales[i] = new float[n / 128 * k];
      for (int col = 0; col < k; col++) {
        for (int b = 0; b < n / 128; b++) {
          double amax = 0;
          for (int r = 0; r < 128; r++) {
            double a = Math.abs((double) x[(start + b * 128 + r) * k + col]);
            if (!Double.isNaN(a)) {
              amax = Math.max(amax, a);
            }
          }
          float s;
          if (amax == 0) {
            s = 1f;
          } else {
            s = 448f / (float) amax;
            if (Float.isInfinite(s)) {
              s = pow2 ? (float) Math.pow(2, 127) : 0x1.FEp127f;
            } else if (s != 0 && pow2) {
              s = floorPow2(s);
            }
          }
          scales[i][b * k + col] = 1f / s;
          for (int r = 0; r < 128; r++) {
            outs[i][col * n + b * 128 + r] = refE4m3(x[(start + b * 128 + r) * k + col] * s);
          }
        }
      }
      start += n;
    }
    return new FusedTransposeSplitQuant.Result(k, tpe, outs, scales);
  }

  static void assertSame(FusedTransposeSplitQuant.Result want, FusedTransposeSplitQuant.Result got, String what) {
    assertEquals(want.outs().length, got.outs().length, what + " experts");
    for (int i = 0; i < want.outs().length; i++) {
      assertArrayEquals(want.outs()[i], got.outs()[i], what + " outs[" + i + "]");
      Tolerance.assertBitEqual(got.scales()[i], want.scales()[i], what + " scales[" + i + "]");
    }
  }

  static short[] bf16(float[] x) {
    short[] b = new short[x.length];
    for (int i = 0; i < x.length; i++) {
      b[i] = Bf16.encode(x[i]);
    }
    return b;
  }

  // ------------------------------------------------------------ tests

  @Test
  void seedExampleShapes() {
    Random rnd = new Random(1);
    float[] x = new float[384 * 512];
    for (int i = 0; i < x.length; i++) {
      x[i] = Bf16.round((float) Math.max(-50, Math.min(50, rnd.nextGaussian())));
    }
    FusedTransposeSplitQuant.Result r = FusedTransposeSplitQuant.quantize(bf16(x), 384, 512, new int[] {128, 128, 128}, true);
    assertEquals(3, r.outs().length);
    assertEquals(512 * 128, r.outs()[0].length, "outs[0] is [512, 128]");
    assertEquals(512, r.scales()[0].length, "scales[0] is [1, 512]");
    assertSame(reference(x, 384, 512, new int[] {128, 128, 128}, true), r, "seed example");
  }

  @Test
  void handComputedBlocks() {
    // K = 5 columns, one block of 128 rows:
    // col 0: row 0 = 2, others 1     -> s = 224 ; pow2: 128
    // col 1: all zero                -> s = 1, scale 1, codes 0
    // col 2: row 0 = +inf, others 1  -> s = 0: inf*0 = NaN (0x7F), 1*0 = 0, scale +inf
    // col 3: row 0 = NaN, others 3   -> NaN ignored by amax: s = 448/3, 3*s -> 448 (0x7E), NaN -> 0x7F
    // col 4: all 2^-133 (smallest bf16 subnormal): 448/amax = inf -> s = 0x1.FEp127 ; pow2: 2^127
    int k = 5;
    float[] x = new float[128 * k];
    for (int r = 0; r < 128; r++) {
      x[r * k] = r == 0 ? 2f : 1f;
      x[r * k + 2] = r == 0 ? Float.POSITIVE_INFINITY : 1f;
      x[r * k + 3] = r == 0 ? Float.NaN : 3f;
      x[r * k + 4] = 0x1p-133f;
    }
    FusedTransposeSplitQuant.Result r = FusedTransposeSplitQuant.quantize(bf16(x), 128, k, new int[] {128}, false);
    byte[] o = r.outs()[0];
    assertEquals(0x7E, o[0]); // 2 * 224 = 448
    assertEquals(0x76, o[1]); // 224 = 1.75 * 2^7
    assertEquals(0x00, o[128 + 5]);
    assertEquals(0x7F, o[2 * 128]);
    assertEquals(0x00, o[2 * 128 + 1]);
    assertEquals(0x7F, o[3 * 128]);
    assertEquals(0x7E, o[3 * 128 + 1]);
    assertEquals(0x10, o[4 * 128]); // 2^-133 * 0x1.FEp127 = 0x1.FEp-6 -> 2^-5
    Tolerance.assertBitEqual(r.scales()[0],
        new float[] {1f / 224f, 1f, Float.POSITIVE_INFINITY, 1f / (448f / 3f), 1f / 0x1.FEp127f}, "dequant scales");

    FusedTransposeSplitQuant.Result p = FusedTransposeSplitQuant.quantize(bf16(x), 128, k, new int[] {128}, true);
    byte[] q = p.outs()[0];
    assertEquals(0x78, q[0]); // 2 * 128 = 256
    assertEquals(0x70, q[1]); // 128
    assertEquals(0x7F, q[2 * 128]);
    assertEquals(0x08, q[4 * 128]); // 2^-133 * 2^127 = 2^-6
    // 448/3 = 149.33 floors to 128: dequant 1/128; 3 * 128 = 384 (0x7C)
    assertEquals(0x7C, q[3 * 128 + 1]);
    Tolerance.assertBitEqual(p.scales()[0],
        new float[] {0x1p-7f, 1f, Float.POSITIVE_INFINITY, 0x1p-7f, 0x1p-127f}, "pow2 dequant scales");
  }

  @Test
  void upstreamCasesBf16AndFp8Input() {
    Object[][] cases = {
        {new int[] {0, 0}, 1024, false},
        {new int[] {128, 256}, 0, true},
        {new int[] {128}, 1, false},
        {new int[] {0, 128, 0, 256}, 127, true},
        {new int[] {384, 512, 640}, 233, false},
        {new int[] {}, 16, true},
    };
    Random rnd = new Random(2);
    for (Object[] c : cases) {
      int[] tpe = (int[]) c[0];
      int k = (Integer) c[1];
      boolean pow2 = (Boolean) c[2];
      int m = Arrays.stream(tpe).sum();
      String what = Arrays.toString(tpe) + " K=" + k + " pow2=" + pow2;
      float[] x = new float[m * k];
      for (int i = 0; i < x.length; i++) {
        x[i] = Bf16.round((float) rnd.nextGaussian() * (i % 7 == 0 ? 100 : 1));
      }
      assertSame(reference(x, m, k, tpe, pow2), FusedTransposeSplitQuant.quantize(bf16(x), m, k, tpe, pow2),
          what + " bf16");
      // fp8 input: random non-NaN codes with randn scales (negative scales are legal)
      int sc = (k + 127) / 128;
      byte[] x8 = new byte[m * k];
      for (int i = 0; i < x8.length; i++) {
        int code;
        do {
          code = rnd.nextInt(256);
        } while ((code & 0x7F) == 0x7F);
        x8[i] = (byte) code;
      }
      float[] xs = new float[m * sc];
      for (int i = 0; i < xs.length; i++) {
        xs[i] = (float) rnd.nextGaussian();
      }
      float[] deq = new float[m * k];
      for (int r = 0; r < m; r++) {
        for (int col = 0; col < k; col++) {
          deq[r * k + col] = Bf16.round((float) E4M3[x8[r * k + col] & 0xFF] * xs[r * sc + col / 128]);
        }
      }
      assertSame(reference(deq, m, k, tpe, pow2), FusedTransposeSplitQuant.quantizeFp8(x8, xs, m, k, tpe, pow2),
          what + " fp8");
    }
  }

  @Test
  void sameInputSameBits() {
    Random rnd = new Random(5);
    float[] x = new float[256 * 300];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    short[] b = bf16(x);
    FusedTransposeSplitQuant.Result a = FusedTransposeSplitQuant.quantize(b, 256, 300, new int[] {128, 128}, false);
    FusedTransposeSplitQuant.Result c = FusedTransposeSplitQuant.quantize(b.clone(), 256, 300, new int[] {128, 128}, false);
    assertSame(a, c, "repeat");
  }

  @Test
  void rejectsBadArguments() {
    assertMessage(() -> FusedTransposeSplitQuant.quantize(new short[256], 256, 1, new int[] {100, 156}, false),
        "tokensPerExpert[0] = 100");
    assertMessage(() -> FusedTransposeSplitQuant.quantize(new short[256], 256, 1, new int[] {128}, false),
        "sums to 128, expected m = 256");
    assertMessage(() -> FusedTransposeSplitQuant.quantize(new short[130], 130, 1, new int[] {130}, false),
        "m (130) must be a multiple of 128");
    assertMessage(() -> FusedTransposeSplitQuant.quantize(new short[0], 0, 65535 * 128 + 1, new int[0], false), "k must be in");
    assertMessage(() -> FusedTransposeSplitQuant.quantize(new short[5], 128, 1, new int[] {128}, false), "x must have 128");
    assertMessage(() -> FusedTransposeSplitQuant.quantizeFp8(new byte[128 * 129], new float[128], 128, 129,
        new int[] {128}, false), "inputScales must have 256");
  }
}
