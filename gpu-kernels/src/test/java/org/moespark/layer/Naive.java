package org.moespark.layer;

import java.util.Random;

/** Independent naive references for the layer tests: plain loops, double accumulation, no BLAS. */
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
}
