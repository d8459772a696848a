package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

class ExpertFfnTest {
  private static float[] naiveRows(ExpertWeights w, float[] x, int rows, double limit, double alpha, double beta,
      boolean silu) {
    int h = w.hidden();
    float[] out = new float[rows * h];
    for (int t = 0; t < rows; t++) {
      double[] y = Naive.expert(w, Naive.row(x, t, h), limit, alpha, beta, silu);
      for (int c = 0; c < h; c++) {
        out[t * h + c] = (float) y[c];
      }
    }
    return out;
  }

  @Test
  void swigluMatchesNaiveLoopsOnAwkwardShapes() {
    Random r = new Random(11);
    // rows: 1, a prime, and more than one GEMM chunk (ExpertFfn.CHUNK = 256)
    for (int[] shape : new int[][] {{37, 23, 1}, {64, 1, 7}, {1, 5, 3}, {31, 17, 257 + 4}}) {
      int h = shape[0];
      int i = shape[1];
      int rows = shape[2];
      ExpertWeights w = Naive.randomExpert(r, h, i, 0.3, false);
      float[] x = Naive.randn(r, rows * h, 1.0);
      float[] got = ExpertFfn.of(w, GatedActivation.SWIGLU, Compute.FP32).forward(x, rows);
      Tolerance.FP32.assertClose(got, naiveRows(w, x, rows, Double.POSITIVE_INFINITY, 1, 0, true),
          "swiglu H=" + h + " I=" + i + " rows=" + rows);
    }
  }

  @Test
  void zeroRowsGiveAnEmptyResult() {
    ExpertWeights w = Naive.randomExpert(new Random(1), 8, 4, 0.3, false);
    assertEquals(0, ExpertFfn.of(w, GatedActivation.SWIGLU, Compute.FP32).forward(new float[0], 0).length);
  }

  @Test
  void biasesAndGptOssClampMatchTheFormula() {
    Random r = new Random(12);
    int h = 40;
    int i = 24;
    int rows = 19;
    // std 0.8 with unit inputs: |pre-activations| ~ 5, a good share past the ±7 clamp
    ExpertWeights w = Naive.randomExpert(r, h, i, 0.8, true);
    float[] x = Naive.randn(r, rows * h, 1.0);
    int clamped = 0;
    for (int t = 0; t < rows; t++) {
      double[] g = Naive.matvec(w.gate(), i, h, Naive.row(x, t, h), w.gateBias());
      double[] u = Naive.matvec(w.up(), i, h, Naive.row(x, t, h), w.upBias());
      for (int c = 0; c < i; c++) {
        clamped += (g[c] > 7 ? 1 : 0) + (Math.abs(u[c]) > 7 ? 1 : 0);
      }
    }
    assertTrue(clamped > 20, "the test must exercise the clamp, only " + clamped + " values past 7");
    float[] got = ExpertFfn.of(w, GatedActivation.GPT_OSS, Compute.FP32).forward(x, rows);
    Tolerance.FP32.assertClose(got, naiveRows(w, x, rows, 7.0, 1.702, 1.0, true), "gpt-oss swiglu");
    // and the plain activation with biases
    float[] plain = ExpertFfn.of(w, GatedActivation.SWIGLU, Compute.FP32).forward(x, rows);
    Tolerance.FP32.assertClose(plain, naiveRows(w, x, rows, Double.POSITIVE_INFINITY, 1, 0, true), "swiglu+bias");
  }

  @Test
  void gptOssActivationHandValues() {
    // g = 8 is clamped to 7; u = -9 is clamped to -7: a = 7·σ(1.702·7)·(-7 + 1)
    double expected = 7 * (1 / (1 + Math.exp(-1.702 * 7))) * (-6);
    assertEquals(expected, GatedActivation.GPT_OSS.apply(8f, -9f), 1e-5 * Math.abs(expected));
    // below the clamp: g = 0.5, u = 2 → 0.5·σ(0.851)·3
    double e2 = 0.5 * (1 / (1 + Math.exp(-0.851))) * 3;
    assertEquals(e2, GatedActivation.GPT_OSS.apply(0.5f, 2f), 1e-6);
    // the gate is clamped from above only
    double e3 = -20 * (1 / (1 + Math.exp(-1.702 * -20))) * 1;
    assertEquals(e3, GatedActivation.GPT_OSS.apply(-20f, 0f), 1e-9);
    assertTrue(Float.isNaN(GatedActivation.GPT_OSS.apply(Float.NaN, 1f)), "NaN gate propagates");
  }

  @Test
  void activationNoneIsGateTimesUp() {
    Random r = new Random(13);
    ExpertWeights w = Naive.randomExpert(r, 16, 8, 0.3, false);
    float[] x = Naive.randn(r, 3 * 16, 1.0);
    GatedActivation none = new GatedActivation(GatedActivation.Kind.NONE, Float.POSITIVE_INFINITY, 1f, 0f);
    float[] got = ExpertFfn.of(w, none, Compute.FP32).forward(x, 3);
    Tolerance.FP32.assertClose(got, naiveRows(w, x, 3, Double.POSITIVE_INFINITY, 1, 0, false), "act none");
  }

  @Test
  void bf16ComputeIsCloseToTheFp32ReferenceOfBf16Weights() {
    Random r = new Random(14);
    ExpertWeights w = Naive.randomExpert(r, 48, 32, 0.3, false);
    float[] x = Naive.randn(r, 9 * 48, 1.0);
    float[] got = ExpertFfn.of(w, GatedActivation.SWIGLU, Compute.BF16).forward(x, 9);
    for (float v : got) {
      assertEquals(v, LayerNumerics.bf16(v), 0f, "bf16 compute must produce bf16 values");
    }
    Tolerance.BF16.assertClose(got, naiveRows(w, x, 9, Double.POSITIVE_INFINITY, 1, 0, true), "bf16 swiglu");
  }

  @Test
  void nanRowStaysInItsRow() {
    Random r = new Random(15);
    ExpertWeights w = Naive.randomExpert(r, 8, 4, 0.3, false);
    float[] x = Naive.randn(r, 3 * 8, 1.0);
    x[8 + 3] = Float.NaN;
    float[] y = ExpertFfn.of(w, GatedActivation.SWIGLU, Compute.FP32).forward(x, 3);
    for (int c = 0; c < 8; c++) {
      assertTrue(Float.isFinite(y[c]) && Float.isFinite(y[16 + c]), "rows 0 and 2 stay finite");
      assertTrue(Float.isNaN(y[8 + c]), "row 1 is NaN");
    }
  }

  @Test
  void argumentsAreChecked() {
    ExpertWeights w = Naive.randomExpert(new Random(2), 8, 4, 0.3, false);
    ExpertFfn f = ExpertFfn.of(w, GatedActivation.SWIGLU, Compute.FP32);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.forward(new float[15], 2));
    assertTrue(e.getMessage().contains("[2, 8] = 16 floats, got 15"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> ExpertWeights.of(8, 4, new float[32], new float[31],
        new float[32]));
    assertTrue(e.getMessage().contains("up must be [4, 8] = 32 floats, got 31"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> ExpertFfn.create(w, GatedActivation.SWIGLU, Float.NaN, -1f, Compute.FP32));
    assertTrue(e.getMessage().contains("fcDownActivationScale") && e.getMessage().contains("-1.0"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> new GatedActivation(GatedActivation.Kind.SILU, -1f, 1f, 0f));
    assertTrue(e.getMessage().contains("limit") && e.getMessage().contains("-1.0"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> new ExpertMixture(List.of(f), Compute.FP32)
        .forward(new float[8], 1, 2, new int[] {0, 3}, new float[2]));
    assertTrue(e.getMessage().contains("ids[token 0][slot 1] = 3") && e.getMessage().contains("[0, 1)"),
        e.getMessage());
  }
}
