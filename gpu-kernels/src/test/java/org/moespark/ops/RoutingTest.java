package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

class RoutingTest {

  // ---------------------------------------------------------------- independent references (double)

  /** Indices of the k largest values, value descending then index ascending, by a full sort. */
  static int[] naiveTopK(double[] v, int k) {
    return IntStream.range(0, v.length).boxed()
        .sorted(Comparator.<Integer>comparingDouble(i -> -v[i]).thenComparingInt(i -> i))
        .limit(k).mapToInt(Integer::intValue).toArray();
  }

  static double[] row(float[] x, int t, int n) {
    double[] r = new double[n];
    for (int i = 0; i < n; i++) {
      r[i] = x[t * n + i];
    }
    return r;
  }

  static double[] softmaxD(double[] x) {
    double max = Arrays.stream(x).max().orElseThrow();
    double sum = 0;
    double[] e = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      e[i] = Math.exp(x[i] - max);
      sum += e[i];
    }
    for (int i = 0; i < x.length; i++) {
      e[i] /= sum;
    }
    return e;
  }

  static float[] randn(Random rnd, int n, double scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (rnd.nextGaussian() * scale);
    }
    return x;
  }

  // ---------------------------------------------------------------- logits

  @Test
  void logitsHandComputed() {
    // 2 tokens, H = 3, E = 2: x = [[1,2,3],[-1,0,0.5]], W = [[1,0,-1],[0.5,0.25,2]], b = [0.5, -1]
    float[] x = {1, 2, 3, -1, 0, 0.5f};
    float[] w = {1, 0, -1, 0.5f, 0.25f, 2};
    float[] b = {0.5f, -1};
    float[] got = Routing.logits(x, 2, 3, w, b, 2);
    // token 0: 1-3+0.5 = -1.5 ; 0.5+0.5+6-1 = 6 ; token 1: -1-0.5+0.5 = -1 ; -0.5+1-1 = -0.5
    Tolerance.assertBitEqual(got, new float[] {-1.5f, 6f, -1f, -0.5f}, "logits");
    float[] noBias = Routing.logits(x, 2, 3, w, null, 2);
    Tolerance.assertBitEqual(noBias, new float[] {-2f, 7f, -1.5f, 0.5f}, "logits without bias");
  }

  @Test
  void logitsMatchDoubleReference() {
    Random rnd = new Random(11);
    int t = 37;
    int h = 131;
    int e = 7;
    float[] x = randn(rnd, t * h, 1);
    float[] w = randn(rnd, e * h, 0.1);
    float[] b = randn(rnd, e, 0.1);
    float[] got = Routing.logits(x, t, h, w, b, e);
    float[] ref = new float[t * e];
    for (int i = 0; i < t; i++) {
      for (int j = 0; j < e; j++) {
        double acc = b[j];
        for (int k = 0; k < h; k++) {
          acc += (double) x[i * h + k] * w[j * h + k];
        }
        ref[i * e + j] = (float) acc;
      }
    }
    Tolerance.FP32.assertClose(got, ref, "logits vs double reference");
    assertEquals(0, Routing.logits(new float[0], 0, h, w, b, e).length);
  }

  @Test
  void logitsRejectsBadShapes() {
    IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.logits(new float[5], 2, 3, new float[6], null, 2));
    assertTrue(ex.getMessage().contains("hidden") && ex.getMessage().contains("6") && ex.getMessage().contains("5"),
        ex.getMessage());
    ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.logits(new float[6], 2, 3, new float[6], new float[3], 2));
    assertTrue(ex.getMessage().contains("gateBias"), ex.getMessage());
  }

  // ---------------------------------------------------------------- softmax -> top-k

  @Test
  void softmaxTopKHandComputed() {
    float[] logits = {1, 2, 3, 4};
    Routing.Result r = Routing.softmaxTopK(logits, 1, 4, 2, false);
    assertArrayEquals(new int[] {3, 2}, r.ids());
    double z = Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(4);
    Tolerance.FP32.assertClose(r.weights(), new float[] {(float) (Math.exp(4) / z), (float) (Math.exp(3) / z)},
        "Qwen (no renorm) weights");
    Routing.Result m = Routing.softmaxTopK(logits, 1, 4, 2, true);
    assertArrayEquals(new int[] {3, 2}, m.ids());
    // renormalised over the two: 1/(1+e^-1), e^-1/(1+e^-1)
    float a = (float) (1 / (1 + Math.exp(-1)));
    Tolerance.FP32.assertClose(m.weights(), new float[] {a, 1 - a}, "Mixtral (renorm) weights");
  }

  @Test
  void tiesGoToTheLowerExpert() {
    float[] logits = {0, 5, 5, 1, /* token 1: all equal */ 2, 2, 2, 2, 2, 2, 2};
    Routing.Result one = Routing.softmaxTopK(Arrays.copyOf(logits, 4), 1, 4, 1, false);
    assertArrayEquals(new int[] {1}, one.ids());
    Routing.Result r = Routing.softmaxTopK(new float[] {0, 5, 5, 1, 2, 2, 2, 2}, 2, 4, 2, false);
    assertArrayEquals(new int[] {1, 2, 0, 1}, r.ids());
    Routing.Result seven = Routing.softmaxTopK(Arrays.copyOfRange(logits, 4, 11), 1, 7, 3, false);
    assertArrayEquals(new int[] {0, 1, 2}, seven.ids());
    Tolerance.FP32.assertClose(seven.weights(), new float[] {1 / 7f, 1 / 7f, 1 / 7f}, "uniform weights");
    Routing.Result g = Routing.topKSoftmax(new float[] {3, 1, 3, 3}, 1, 4, 2);
    assertArrayEquals(new int[] {0, 2}, g.ids());
    Tolerance.FP32.assertClose(g.weights(), new float[] {0.5f, 0.5f}, "GPT-OSS tied weights");
  }

  @Test
  void softmaxTopKMatchesReferenceOverSweep() {
    Random rnd = new Random(5);
    for (int e : new int[] {1, 3, 7, 16, 64, 256}) {
      for (int k : new int[] {1, 2, 5, 8}) {
        if (k > e) {
          continue;
        }
        int t = e >= 64 ? 61 : 127;
        float[] logits = randn(rnd, t * e, 2);
        for (boolean renorm : new boolean[] {false, true}) {
          Routing.Result r = Routing.softmaxTopK(logits, t, e, k, renorm);
          int[] refIds = new int[t * k];
          float[] refW = new float[t * k];
          for (int i = 0; i < t; i++) {
            double[] p = softmaxD(row(logits, i, e));
            int[] top = naiveTopK(row(logits, i, e), k); // softmax is monotone: rank logits
            double s = 0;
            for (int j = 0; j < k; j++) {
              s += p[top[j]];
            }
            for (int j = 0; j < k; j++) {
              refIds[i * k + j] = top[j];
              refW[i * k + j] = (float) (renorm ? p[top[j]] / s : p[top[j]]);
            }
          }
          String what = "E=" + e + " K=" + k + " renorm=" + renorm;
          assertArrayEquals(refIds, r.ids(), what + " ids");
          Tolerance.FP32.assertClose(r.weights(), refW, what + " weights");
        }
      }
    }
  }

  @Test
  void zeroTokens() {
    Routing.Result r = Routing.softmaxTopK(new float[0], 0, 8, 2, true);
    assertEquals(0, r.tokens());
    assertEquals(0, r.ids().length);
    assertEquals(0, Routing.topKSoftmax(new float[0], 0, 8, 2).weights().length);
    assertEquals(0, Routing.sigmoidGroupedTopK(new float[0], 0, 8, 2, null, 4, 2, true, 2.5f).ids().length);
  }

  // ---------------------------------------------------------------- GPT-OSS

  @Test
  void gptOssTopKThenSoftmax() {
    float[] logits = {2, -1, 3, 0.5f};
    Routing.Result r = Routing.topKSoftmax(logits, 1, 4, 2);
    assertArrayEquals(new int[] {2, 0}, r.ids());
    float a = (float) (1 / (1 + Math.exp(-1)));
    Tolerance.FP32.assertClose(r.weights(), new float[] {a, 1 - a}, "softmax over the two selected");
    // Mathematically equal to softmax -> top-k -> renormalise (not bitwise).
    Random rnd = new Random(3);
    float[] big = randn(rnd, 200 * 32, 1.5);
    Routing.Result x = Routing.topKSoftmax(big, 200, 32, 4);
    Routing.Result y = Routing.softmaxTopK(big, 200, 32, 4, true);
    assertArrayEquals(y.ids(), x.ids());
    Tolerance.FP32.assertClose(x.weights(), y.weights(), "topk->softmax vs softmax->topk->renorm");
  }

  @Test
  void softmaxRejectsNanAndInf() {
    IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.softmaxTopK(new float[] {0, 1, 2, Float.NaN}, 2, 2, 1, false));
    assertTrue(ex.getMessage().contains("logits[1, 1]") && ex.getMessage().contains("NaN"), ex.getMessage());
    ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.softmaxTopK(new float[] {0, Float.POSITIVE_INFINITY}, 1, 2, 1, false));
    assertTrue(ex.getMessage().contains("+inf"), ex.getMessage());
    float ninf = Float.NEGATIVE_INFINITY;
    ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.topKSoftmax(new float[] {ninf, ninf, ninf}, 1, 3, 2));
    assertTrue(ex.getMessage().contains("-inf"), ex.getMessage());
    // -inf as a mask is fine
    Routing.Result r = Routing.softmaxTopK(new float[] {ninf, 0, ninf}, 1, 3, 2, false);
    assertArrayEquals(new int[] {1, 0}, r.ids());
    Tolerance.assertBitEqual(r.weights(), new float[] {1f, 0f}, "masked softmax");
    ex = assertThrows(IllegalArgumentException.class, () -> Routing.softmaxTopK(new float[4], 1, 4, 5, false));
    assertTrue(ex.getMessage().contains("topK") && ex.getMessage().contains("5"), ex.getMessage());
  }

  // ---------------------------------------------------------------- DeepSeek-V3

  @Test
  void deepSeekGroupsAndBiasHandComputed() {
    // Logits 0 -> s = 0.5 for every expert; the bias alone decides selection.
    // E = 8, nGroup = 4 (G = 2), topkGroup = 2, K = 3.
    // c = 0.5 + bias: g0 [0.6, 0.5] sum 1.1; g1 [0.8, 0.8] 1.6; g2 [1.0, 0.0] 1.0 (highest single
    // expert, but the top-2 sum loses); g3 [0.7, 0.75] 1.45 -> keep g1, g3.
    // Candidates 2:0.8 3:0.8 6:0.7 7:0.75 -> ids [2, 3, 7] (2 before 3: tie, lower index).
    float[] bias = {0.1f, 0.0f, 0.3f, 0.3f, 0.5f, -0.5f, 0.2f, 0.25f};
    float[] logits = new float[8];
    Routing.Result r = Routing.sigmoidGroupedTopK(logits, 1, 8, 3, bias, 4, 2, true, 2.5f);
    assertArrayEquals(new int[] {2, 3, 7}, r.ids());
    // weights from the UNBIASED s = 0.5: renormalised 1/3 each, times 2.5
    Tolerance.FP32.assertClose(r.weights(), new float[] {2.5f / 3, 2.5f / 3, 2.5f / 3}, "renormalised x2.5");
    Routing.Result nr = Routing.sigmoidGroupedTopK(logits, 1, 8, 3, bias, 4, 2, false, 2.5f);
    assertArrayEquals(new int[] {2, 3, 7}, nr.ids());
    Tolerance.assertBitEqual(nr.weights(), new float[] {1.25f, 1.25f, 1.25f}, "0.5 x 2.5");
    // Without groups (nGroup = 1) expert 4 (c = 1.0) wins.
    Routing.Result flat = Routing.sigmoidGroupedTopK(logits, 1, 8, 3, bias, 1, 1, false, 1f);
    assertArrayEquals(new int[] {4, 2, 3}, flat.ids());
  }

  @Test
  void deepSeekWeightsUseUnbiasedSigmoid() {
    // s = sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2, sigmoid(-ln 3) = 1/4; the bias flips the order.
    float l3 = (float) Math.log(3);
    float[] logits = {l3, 0, -l3, -5};
    float[] bias = {0f, 0f, 1f, 0f};
    Routing.Result r = Routing.sigmoidGroupedTopK(logits, 1, 4, 2, bias, 1, 1, true, 1f);
    assertArrayEquals(new int[] {2, 0}, r.ids()); // c = 1.25, 0.75, 0.5, ~0.0067
    Tolerance.FP32.assertClose(r.weights(), new float[] {0.25f, 0.75f}, "unbiased sigmoid, renormalised");
    // K = 1 with renormalisation: s / (s + 1e-20) = 1, times the scale (HF; TE would give s).
    Routing.Result k1 = Routing.sigmoidGroupedTopK(logits, 1, 4, 1, bias, 1, 1, true, 2.5f);
    assertArrayEquals(new int[] {2}, k1.ids());
    Tolerance.assertBitEqual(k1.weights(), new float[] {2.5f}, "K=1 renormalised");
  }

  @Test
  void deepSeekMaskZeroVersusNegInf() {
    // s = 0.5 everywhere. Kept group 0 has c = -0.2 (sum -0.4); group 1 c = -0.4 (sum -0.8).
    float[] bias = {-0.7f, -0.7f, -0.9f, -0.9f};
    float[] logits = new float[4];
    Routing.Result neg = Routing.sigmoidGroupedTopK(logits, 1, 4, 2, bias, 2, 1, false, 1f);
    assertArrayEquals(new int[] {0, 1}, neg.ids());
    // HF masks dropped groups with 0.0, which beats the kept experts' negative scores.
    Routing.Result zero = Routing.sigmoidGroupedTopK(logits, 1, 4, 2, bias, 2, 1, false, 1f,
        Routing.GroupMask.ZERO);
    assertArrayEquals(new int[] {2, 3}, zero.ids());
  }

  @Test
  void deepSeekMatchesNaiveReference() {
    Random rnd = new Random(17);
    int t = 97;
    for (int[] cfg : new int[][] {{256, 8, 8, 4}, {64, 8, 4, 2}, {16, 2, 4, 3}, {7, 1, 7, 1}, {1, 1, 1, 1}, {3, 2, 3, 2}}) {
      int e = cfg[0];
      int k = cfg[1];
      int nGroup = cfg[2];
      int topkGroup = cfg[3];
      float[] logits = randn(rnd, t * e, 2);
      float[] bias = randn(rnd, e, 0.3);
      Routing.Result r = Routing.sigmoidGroupedTopK(logits, t, e, k, bias, nGroup, topkGroup, true, 2.5f);
      int g = e / nGroup;
      for (int i = 0; i < t; i++) {
        double[] s = new double[e];
        double[] c = new double[e];
        for (int j = 0; j < e; j++) {
          s[j] = 1 / (1 + Math.exp(-(double) logits[i * e + j]));
          c[j] = (float) ((float) s[j] + bias[j]); // selection score as the router forms it in fp32
        }
        double[] gs = new double[nGroup];
        for (int q = 0; q < nGroup; q++) {
          double[] grp = Arrays.copyOfRange(c, q * g, (q + 1) * g);
          Arrays.sort(grp);
          gs[q] = grp[g - 1] + (g > 1 ? grp[g - 2] : 0);
        }
        int[] keep = naiveTopK(gs, topkGroup);
        double[] masked = new double[e];
        Arrays.fill(masked, Double.NEGATIVE_INFINITY);
        for (int q : keep) {
          System.arraycopy(c, q * g, masked, q * g, g);
        }
        int[] ids = naiveTopK(masked, k);
        double sum = 0;
        for (int id : ids) {
          sum += s[id];
        }
        float[] w = new float[k];
        for (int j = 0; j < k; j++) {
          w[j] = (float) (s[ids[j]] / sum * 2.5);
        }
        String what = "E=" + e + " K=" + k + " groups=" + nGroup + "/" + topkGroup + " token " + i;
        assertArrayEquals(ids, Arrays.copyOfRange(r.ids(), i * k, (i + 1) * k), what);
        Tolerance.FP32.assertClose(Arrays.copyOfRange(r.weights(), i * k, (i + 1) * k), w, what);
      }
    }
  }

  @Test
  void deepSeekRejectsBadGroups() {
    float[] l = new float[8];
    IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.sigmoidGroupedTopK(l, 1, 8, 2, null, 3, 1, true, 1f));
    assertTrue(ex.getMessage().contains("nGroup (3)"), ex.getMessage());
    ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.sigmoidGroupedTopK(l, 1, 8, 2, null, 4, 5, true, 1f));
    assertTrue(ex.getMessage().contains("topkGroup"), ex.getMessage());
    ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.sigmoidGroupedTopK(l, 1, 8, 3, null, 4, 1, true, 1f));
    assertTrue(ex.getMessage().contains("kept groups"), ex.getMessage());
    ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.sigmoidGroupedTopK(l, 1, 8, 2, new float[7], 4, 2, true, 1f));
    assertTrue(ex.getMessage().contains("correctionBias") && ex.getMessage().contains("7"), ex.getMessage());
    ex = assertThrows(IllegalArgumentException.class,
        () -> Routing.sigmoidGroupedTopK(l, 1, 8, 2, null, 4, 2, true, Float.NaN));
    assertTrue(ex.getMessage().contains("routedScalingFactor"), ex.getMessage());
  }

  @Test
  void sameInputSameBits() {
    Random rnd = new Random(23);
    float[] logits = randn(rnd, 1223 * 64, 2);
    float[] bias = randn(rnd, 64, 0.2);
    Routing.Result a = Routing.sigmoidGroupedTopK(logits, 1223, 64, 8, bias, 8, 4, true, 2.5f);
    Routing.Result b = Routing.sigmoidGroupedTopK(logits.clone(), 1223, 64, 8, bias.clone(), 8, 4, true, 2.5f);
    assertArrayEquals(a.ids(), b.ids());
    Tolerance.assertBitEqual(a.weights(), b.weights(), "repeat");
    for (int i = 0; i < 1223; i++) {
      int[] row = Arrays.copyOfRange(a.ids(), i * 8, i * 8 + 8);
      assertEquals(8, Arrays.stream(row).distinct().count(), "distinct experts in row " + i);
    }
  }
}
