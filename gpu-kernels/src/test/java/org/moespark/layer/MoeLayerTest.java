package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

/** Each routing family end to end against an independent per-token reference written here. */
class MoeLayerTest {
  static final int H = 32;
  static final int T = 37;

  /** Tiny random blocks shaped like the HF fixtures of each family. */
  static MoeBlockSpec family(String name, long seed) {
    Random r = new Random(seed);
    int e;
    int k;
    int i = 24;
    List<ExpertWeights> experts = new ArrayList<>();
    switch (name) {
      case "mixtral" -> {
        e = 8;
        k = 2;
        for (int x = 0; x < e; x++) {
          experts.add(Naive.randomExpert(r, H, i, 0.3, false));
        }
        return new MoeBlockSpec(name, RouterSpec.softmaxTopK(H, e, k, Naive.randn(r, e * H, 0.3), true, false),
            experts, GatedActivation.SWIGLU, null, null);
      }
      case "qwen2_moe", "qwen3_moe", "olmoe" -> {
        e = name.equals("olmoe") ? 16 : 8;
        k = name.equals("olmoe") ? 4 : name.equals("qwen3_moe") ? 3 : 2;
        for (int x = 0; x < e; x++) {
          experts.add(Naive.randomExpert(r, H, i, 0.3, false));
        }
        boolean norm = name.equals("qwen3_moe");
        ExpertWeights shared = name.equals("qwen2_moe") ? Naive.randomExpert(r, H, 40, 0.3, false) : null;
        float[] gate = shared == null ? null : Naive.randn(r, H, 0.3);
        return new MoeBlockSpec(name, RouterSpec.softmaxTopK(H, e, k, Naive.randn(r, e * H, 0.3), norm, true),
            experts, GatedActivation.SWIGLU, shared, gate);
      }
      case "deepseek_v3" -> {
        e = 16;
        k = 4;
        for (int x = 0; x < e; x++) {
          experts.add(Naive.randomExpert(r, H, 16, 0.3, false));
        }
        return new MoeBlockSpec(name, RouterSpec.sigmoidGroupedTopK(H, e, k, Naive.randn(r, e * H, 0.3),
            Naive.randn(r, e, 0.15), 4, 2, true, 2.5f), experts, GatedActivation.SWIGLU,
            Naive.randomExpert(r, H, 16, 0.3, false), null);
      }
      case "gpt_oss" -> {
        e = 8;
        k = 2;
        for (int x = 0; x < e; x++) {
          experts.add(Naive.randomExpert(r, H, i, 0.8, true));
        }
        return new MoeBlockSpec(name, RouterSpec.topKSoftmax(H, e, k, Naive.randn(r, e * H, 0.8),
            Naive.randn(r, e, 0.4)), experts, GatedActivation.GPT_OSS, null, null);
      }
      default -> throw new IllegalArgumentException(name);
    }
  }

  /** The reference: one token at a time, double precision, the formulas of models-and-formats §2. */
  record Ref(float[] y, int[] ids, float[] w) {}

  static Ref reference(MoeBlockSpec s, float[] x, int tokens) {
    return reference(s, x, tokens, false);
  }

  /**
   * @param bf16Logits round the router logits to bf16 as a bf16 model's router linear does (not for
   *     DeepSeek-V3, whose router runs in fp32)
   */
  static Ref reference(MoeBlockSpec s, float[] x, int tokens, boolean bf16Logits) {
    RouterSpec rs = s.router();
    int e = rs.experts();
    int k = rs.topK();
    float[] y = new float[tokens * H];
    int[] ids = new int[tokens * k];
    float[] ws = new float[tokens * k];
    GatedActivation a = s.activation();
    for (int t = 0; t < tokens; t++) {
      double[] xr = Naive.row(x, t, H);
      double[] logits = Naive.matvec(rs.weight(), e, H, xr, rs.bias());
      if (bf16Logits && rs.kind() != RouterSpec.Kind.SIGMOID_GROUPED_TOPK) {
        for (int j = 0; j < e; j++) {
          logits[j] = Naive.roundToBf16(logits[j]);
        }
      }
      int[] idx;
      double[] w = new double[k];
      switch (rs.kind()) {
        case SOFTMAX_TOPK -> {
          double[] p = softmax(logits);
          idx = Naive.topK(p, k);
          double sum = 0;
          for (int j = 0; j < k; j++) {
            sum += p[idx[j]];
          }
          for (int j = 0; j < k; j++) {
            w[j] = rs.normTopK() ? p[idx[j]] / sum : p[idx[j]];
          }
        }
        case TOPK_SOFTMAX -> {
          idx = Naive.topK(logits, k);
          double[] v = new double[k];
          for (int j = 0; j < k; j++) {
            v[j] = logits[idx[j]];
          }
          w = softmax(v);
        }
        default -> {
          double[] sg = new double[e];
          double[] c = new double[e];
          for (int x2 = 0; x2 < e; x2++) {
            sg[x2] = Naive.sigmoid(logits[x2]);
            c[x2] = sg[x2] + rs.correctionBias()[x2];
          }
          int gsize = e / rs.nGroup();
          double[] gscore = new double[rs.nGroup()];
          for (int g = 0; g < rs.nGroup(); g++) {
            double[] grp = java.util.Arrays.copyOfRange(c, g * gsize, (g + 1) * gsize);
            int[] two = Naive.topK(grp, 2);
            gscore[g] = grp[two[0]] + grp[two[1]];
          }
          int[] keep = Naive.topK(gscore, rs.topkGroup());
          double[] masked = new double[e];
          java.util.Arrays.fill(masked, Double.NEGATIVE_INFINITY);
          for (int g : keep) {
            System.arraycopy(c, g * gsize, masked, g * gsize, gsize);
          }
          idx = Naive.topK(masked, k);
          double sum = 0;
          for (int j = 0; j < k; j++) {
            sum += sg[idx[j]];
          }
          for (int j = 0; j < k; j++) {
            w[j] = (rs.normTopK() ? sg[idx[j]] / (sum + 1e-20) : sg[idx[j]]) * rs.routedScalingFactor();
          }
        }
      }
      double[] acc = new double[H];
      for (int j = 0; j < k; j++) {
        double[] o = Naive.expert(s.experts().get(idx[j]), xr, a.limit(), a.alpha(), a.beta(), true);
        for (int c = 0; c < H; c++) {
          acc[c] += w[j] * o[c];
        }
        ids[t * k + j] = idx[j];
        ws[t * k + j] = (float) w[j];
      }
      if (s.shared() != null) {
        double[] o = Naive.expert(s.shared(), xr, a.limit(), a.alpha(), a.beta(), true);
        double g = 1;
        if (s.sharedGate() != null) {
          double d = 0;
          for (int c = 0; c < H; c++) {
            d += xr[c] * s.sharedGate()[c];
          }
          g = Naive.sigmoid(d);
        }
        for (int c = 0; c < H; c++) {
          acc[c] += g * o[c];
        }
      }
      for (int c = 0; c < H; c++) {
        y[t * H + c] = (float) acc[c];
      }
    }
    return new Ref(y, ids, ws);
  }

  static double[] softmax(double[] v) {
    double max = Double.NEGATIVE_INFINITY;
    for (double d : v) {
      max = Math.max(max, d);
    }
    double sum = 0;
    double[] out = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = Math.exp(v[i] - max);
      sum += out[i];
    }
    for (int i = 0; i < v.length; i++) {
      out[i] /= sum;
    }
    return out;
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss"})
  void familyMatchesTheNaiveReferenceInFp32(String name) {
    MoeBlockSpec s = family(name, name.hashCode());
    float[] x = Naive.randn(new Random(5), T * H, 1.0);
    try (MoeLayer layer = MoeLayer.create(s, LayerOptions.defaults())) {
      assertEquals("cpu", layer.backend());
      assertEquals(name, layer.modelType());
      MoeLayer.Output out = layer.forward(x, T);
      Ref ref = reference(s, x, T);
      assertArrayEquals(ref.ids(), out.topkIds(), name + " top-k ids");
      Tolerance.FP32.assertClose(out.topkWeights(), ref.w(), name + " top-k weights");
      Tolerance.FP32.assertClose(out.y(), ref.y(), name + " y");
      assertEquals(T, out.tokens());
      assertEquals(H, out.hidden());
      assertEquals(s.router().topK(), out.topK());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen2_moe", "deepseek_v3", "gpt_oss"})
  void familyInBf16IsWithinTheBf16Tolerance(String name) {
    // a bf16 model: weights and input are bf16 values; the reference computes on them in double
    MoeBlockSpec s = bf16(family(name, name.hashCode()));
    float[] x = bf16(Naive.randn(new Random(5), T * H, 1.0));
    MoeLayer.Output out = MoeLayer.create(s, new LayerOptions(Backend.CPU, Compute.BF16)).forward(x, T);
    for (float v : out.y()) {
      assertEquals(v, LayerNumerics.bf16(v), 0f, "bf16 output values");
    }
    Ref ref = reference(s, x, T, true);
    assertArrayEquals(ref.ids(), out.topkIds(), name + " bf16 ids");
    Tolerance.BF16.assertClose(out.y(), ref.y(), name + " bf16 y");
    Tolerance.BF16.assertClose(out.topkWeights(), ref.w(), name + " bf16 weights");
  }

  static float[] bf16(float[] a) {
    if (a == null) {
      return null;
    }
    float[] b = a.clone();
    LayerNumerics.bf16InPlace(b, 0, b.length);
    return b;
  }

  static ExpertWeights bf16(ExpertWeights w) {
    return w == null ? null : new ExpertWeights(w.hidden(), w.intermediate(), bf16(w.gate()), bf16(w.up()),
        bf16(w.down()), bf16(w.gateBias()), bf16(w.upBias()), bf16(w.downBias()));
  }

  static MoeBlockSpec bf16(MoeBlockSpec s) {
    RouterSpec r = s.router();
    RouterSpec rb = new RouterSpec(r.kind(), r.hidden(), r.experts(), r.topK(), bf16(r.weight()), bf16(r.bias()),
        r.normTopK(), r.weightsInModelDtype(), r.correctionBias(), r.nGroup(), r.topkGroup(), r.routedScalingFactor());
    return new MoeBlockSpec(s.modelType(), rb, s.experts().stream().map(MoeLayerTest::bf16).toList(), s.activation(),
        bf16(s.shared()), bf16(s.sharedGate()));
  }

  @Test
  void zeroTokens() {
    MoeLayer.Output out = MoeLayer.create(family("mixtral", 1), LayerOptions.defaults()).forward(new float[0], 0);
    assertEquals(0, out.y().length);
    assertEquals(0, out.topkIds().length);
  }

  @Test
  void tiesGoToTheLowerExpert() {
    // experts 2 and 5 have identical router rows: equal logits. With K = 1, expert 2 must win whenever
    // the pair is on top; with K = 2 and the pair best, ids read [2, 5].
    Random r = new Random(3);
    int e = 8;
    float[] w = Naive.randn(r, e * H, 0.3);
    for (int c = 0; c < H; c++) {
      w[2 * H + c] = 1f;
      w[5 * H + c] = 1f;
    }
    List<ExpertWeights> experts = new ArrayList<>();
    for (int x = 0; x < e; x++) {
      experts.add(Naive.randomExpert(r, H, 8, 0.3, false));
    }
    float[] x = new float[H];
    java.util.Arrays.fill(x, 1f); // logits of 2 and 5 = 32, far above the others
    for (int k = 1; k <= 2; k++) {
      MoeBlockSpec s = new MoeBlockSpec("mixtral", RouterSpec.softmaxTopK(H, e, k, w, true, false), experts,
          GatedActivation.SWIGLU, null, null);
      int[] ids = MoeLayer.create(s, LayerOptions.defaults()).forward(x, 1).topkIds();
      assertArrayEquals(k == 1 ? new int[] {2} : new int[] {2, 5}, ids, "K=" + k);
      MoeBlockSpec g = new MoeBlockSpec("gpt_oss", RouterSpec.topKSoftmax(H, e, k, w, null), experts,
          GatedActivation.GPT_OSS, null, null);
      assertArrayEquals(k == 1 ? new int[] {2} : new int[] {2, 5},
          MoeLayer.create(g, LayerOptions.defaults()).forward(x, 1).topkIds(), "topk-softmax K=" + k);
    }
  }

  @Test
  void deepSeekMasksDroppedGroupsWithMinusInfinity() {
    // all biased scores negative: with -inf masking only experts of kept groups can be chosen
    // (transformers' 0.0 masking would pick from dropped groups here; moe-ops-semantics §14).
    int e = 8;
    float[] w = new float[e * H]; // zero router: s = sigmoid(0) = 0.5 for every expert
    float[] bias = {-0.6f, -0.7f, -0.9f, -0.95f, -0.55f, -0.65f, -0.8f, -0.85f};
    // groups of 2: sums -1.3, -1.85, -1.2, -1.65 → keep groups 2 and 0 (topk_group 2)
    List<ExpertWeights> experts = new ArrayList<>();
    Random r = new Random(4);
    for (int x = 0; x < e; x++) {
      experts.add(Naive.randomExpert(r, H, 8, 0.3, false));
    }
    MoeBlockSpec s = new MoeBlockSpec("deepseek_v3", RouterSpec.sigmoidGroupedTopK(H, e, 3, w, bias, 4, 2, true, 2.5f),
        experts, GatedActivation.SWIGLU, null, null);
    MoeLayer.Output out = MoeLayer.create(s, LayerOptions.defaults()).forward(new float[H], 1);
    assertArrayEquals(new int[] {4, 0, 5}, out.topkIds(), "biased scores -0.05, -0.1, -0.15 of kept groups");
    // weights: unbiased 0.5 each, normalised to 1/3, times 2.5
    Tolerance.FP32.assertClose(out.topkWeights(), new float[] {2.5f / 3, 2.5f / 3, 2.5f / 3}, "weights");
  }

  @Test
  void concurrentCallsGiveTheSameBits() throws Exception {
    MoeLayer layer = MoeLayer.create(family("qwen2_moe", 9), LayerOptions.defaults());
    float[] x = Naive.randn(new Random(6), 300 * H, 1.0);
    MoeLayer.Output single = layer.forward(x, 300);
    ExecutorService pool = Executors.newFixedThreadPool(2);
    try {
      List<Future<MoeLayer.Output>> fs = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        fs.add(pool.submit(() -> layer.forward(x, 300)));
      }
      for (Future<MoeLayer.Output> f : fs) {
        MoeLayer.Output o = f.get();
        Tolerance.assertBitEqual(o.y(), single.y(), "concurrent y");
        assertArrayEquals(single.topkIds(), o.topkIds(), "concurrent ids");
        Tolerance.assertBitEqual(o.topkWeights(), single.topkWeights(), "concurrent weights");
      }
    } finally {
      pool.shutdown();
    }
  }

  @Test
  void resultsAreDeterministicAndTokenIndependent() {
    MoeLayer layer = MoeLayer.create(family("olmoe", 10), LayerOptions.defaults());
    float[] x = Naive.randn(new Random(7), T * H, 1.0);
    MoeLayer.Output a = layer.forward(x, T);
    Tolerance.assertBitEqual(layer.forward(x.clone(), T).y(), a.y(), "same call twice");
    // a token's result does not depend on the batch it is in (per-token accumulation order is fixed)
    float[] one = java.util.Arrays.copyOfRange(x, 5 * H, 6 * H);
    Tolerance.assertBitEqual(layer.forward(one, 1).y(), java.util.Arrays.copyOfRange(a.y(), 5 * H, 6 * H),
        "token 5 alone vs in the batch");
  }

  @Test
  void nanTokenOnlyPoisonsItself() {
    MoeLayer layer = MoeLayer.create(family("deepseek_v3", 11), LayerOptions.defaults());
    float[] x = Naive.randn(new Random(8), 3 * H, 1.0);
    x[H + 7] = Float.NaN;
    MoeLayer.Output o = layer.forward(x, 3);
    for (int c = 0; c < H; c++) {
      assertTrue(Float.isFinite(o.y()[c]) && Float.isFinite(o.y()[2 * H + c]), "tokens 0 and 2 stay finite");
      assertTrue(Float.isNaN(o.y()[H + c]), "token 1 is NaN");
    }
  }

  @Test
  void argumentsAndBackendsAreChecked() {
    MoeLayer layer = MoeLayer.create(family("mixtral", 1), LayerOptions.defaults());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> layer.forward(new float[65], 2));
    assertTrue(e.getMessage().contains("[tokens=2, hidden=32] = 64 floats, got 65"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> layer.forward(new float[0], -1));
    assertTrue(e.getMessage().contains("-1"), e.getMessage());
    UnsupportedOperationException u = assertThrows(UnsupportedOperationException.class,
        () -> MoeLayer.create(family("mixtral", 1), new LayerOptions(Backend.GPU, Compute.FP32)));
    assertTrue(u.getMessage().contains("GPU backend not implemented yet"), u.getMessage());
    assertEquals("cpu", MoeLayer.create(family("mixtral", 1), new LayerOptions(Backend.AUTO, Compute.BF16)).backend());
    e = assertThrows(IllegalArgumentException.class,
        () -> RouterSpec.softmaxTopK(H, 8, 9, new float[8 * H], true, false));
    assertTrue(e.getMessage().contains("topK must be in [1, 8], got 9"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> RouterSpec.sigmoidGroupedTopK(H, 8, 2, new float[8 * H], null, 3, 1, true, 1f));
    assertTrue(e.getMessage().contains("n_group") && e.getMessage().contains("got 3"), e.getMessage());
  }
}
