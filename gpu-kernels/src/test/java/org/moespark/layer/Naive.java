package org.moespark.layer;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.moespark.formats.Bf16;

/**
 * Independent naive references for the layer tests (plain loops, double accumulation, no BLAS), and the test
 * data the GEMM and layer tests share.
 */
final class Naive {
  private Naive() {}

  static float[] randn(Random r, int n, double std) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = (float) (r.nextGaussian() * std);
    }
    return a;
  }

  /** out[i] = Σ_h w[i][h]·x[h] (+ b[i]) for w [n, k]. */
  static double[] matvec(float[] w, int n, int k, double[] x, float[] b) {
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int h = 0; h < k; h++) {
        s += (double) w[i * k + h] * x[h];
      }
      out[i] = s + (b == null ? 0 : b[i]);
    }
    return out;
  }

  static double sigmoid(double v) {
    return 1 / (1 + Math.exp(-v));
  }

  /** One expert on one row: plain SwiGLU or the clamped variant, written out from the spec. */
  static double[] expert(ExpertWeights w, double[] x, double limit, double alpha, double beta, boolean silu) {
    int h = w.hidden();
    int i = w.intermediate();
    double[] g = matvec(w.gate(), i, h, x, w.gateBias());
    double[] u = matvec(w.up(), i, h, x, w.upBias());
    double[] a = new double[i];
    for (int c = 0; c < i; c++) {
      double gc = Math.min(g[c], limit);
      double uc = Math.max(-limit, Math.min(u[c], limit));
      double act = silu ? gc * sigmoid(alpha * gc) : gc;
      a[c] = act * (uc + beta);
    }
    return matvec(w.down(), h, i, a, w.downBias());
  }

  static double[] swiglu(ExpertWeights w, double[] x) {
    return expert(w, x, Double.POSITIVE_INFINITY, 1, 0, true);
  }

  static double[] row(float[] x, int t, int h) {
    double[] r = new double[h];
    for (int c = 0; c < h; c++) {
      r[c] = x[t * h + c];
    }
    return r;
  }

  static ExpertWeights randomExpert(Random r, int h, int i, double std, boolean biases) {
    return new ExpertWeights(h, i, randn(r, i * h, std), randn(r, i * h, std), randn(r, h * i, std),
        biases ? randn(r, i, std) : null, biases ? randn(r, i, std) : null, biases ? randn(r, h, std) : null);
  }

  /** Indices of the k largest values, larger first, lower index on ties (selection sort). */
  static int[] topK(double[] v, int k) {
    int[] idx = new int[k];
    boolean[] used = new boolean[v.length];
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int e = 0; e < v.length; e++) {
        if (!used[e] && (best < 0 || v[e] > v[best])) {
          best = e;
        }
      }
      used[best] = true;
      idx[j] = best;
    }
    return idx;
  }

  static float[] toFloat(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return f;
  }

  /**
   * Round to the nearest bf16 value (8 significant bits), ties to even — written independently of the
   * code under test: scale into [128, 256), round with Math.rint (half-even), scale back.
   */
  static double roundToBf16(double v) {
    if (v == 0 || !Double.isFinite(v)) {
      return v;
    }
    float f = (float) v; // the layer rounds fp32 logits; double→float first as the fp32 GEMM output is
    int e = Math.getExponent(f);
    double scaled = Math.scalb((double) f, 7 - e);
    return Math.scalb(Math.rint(scaled), e - 7);
  }

  /** bf16 bits of {@code a}. */
  static short[] bf16Bits(float[] a) {
    short[] s = new short[a.length];
    Bf16.encode(a, 0, s, 0, a.length);
    return s;
  }

  /** The values of bf16 bits {@code s}. */
  static float[] bf16Values(short[] s) {
    float[] f = new float[s.length];
    Bf16.decode(s, 0, f, 0, s.length);
    return f;
  }

  /** Expert segment offsets {@code [E+1]} of the given row counts. */
  static int[] offsets(int... counts) {
    int[] o = new int[counts.length + 1];
    for (int e = 0; e < counts.length; e++) {
      o[e + 1] = o[e] + counts[e];
    }
    return o;
  }

  /**
   * The larger layer of the GPU layer tests: hidden {@code h}, 16 experts of intermediate 203 (not a multiple of 8),
   * top-4 softmax routing in which expert 3 is never chosen, a shared expert of 72 with its gate (OLMoE-style
   * routing, Qwen2-style shared expert); the same values for the same {@code h}.
   */
  static MoeBlockSpec raggedLayer(int h) {
    Random r = new Random(11);
    int inter = 203;
    int e = 16;
    List<ExpertWeights> ex = new ArrayList<>();
    for (int i = 0; i < e; i++) {
      ex.add(randomExpert(r, h, inter, 0.08, false));
    }
    float[] router = randn(r, e * h, 0.2);
    for (int i = 0; i < h; i++) {
      router[3 * h + i] = -5f; // expert 3 never chosen
    }
    return new MoeBlockSpec("olmoe", RouterSpec.softmaxTopK(h, e, 4, router, false, true), ex,
        GatedActivation.SWIGLU, randomExpert(r, h, 72, 0.08, false), randn(r, h, 0.1));
  }

  /** Runs {@code body} with system property {@code key} set to {@code value}, then restores it. */
  static void withSystemProperty(String key, String value, Runnable body) {
    String before = System.getProperty(key);
    try {
      System.setProperty(key, value);
      body.run();
    } finally {
      if (before == null) {
        System.clearProperty(key);
      } else {
        System.setProperty(key, before);
      }
    }
  }
}
