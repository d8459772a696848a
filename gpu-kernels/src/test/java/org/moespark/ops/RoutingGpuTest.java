package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.formats.Bf16;
import org.moespark.ops.RoutingGpu.LogitsType;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/**
 * The GPU routers against {@link Routing}: ids equal, weights within fp32 tolerance. Logits are drawn
 * so that no selection is a near-tie (scores whose order a few ulp of {@code exp} rounding could flip,
 * see {@link RoutingGpu}); exact ties are kept and must resolve to the lower index on both sides.
 */
@Tag("gpu")
class RoutingGpuTest extends DeviceTest {
  /** True if two of the k+1 largest keys are different but within a relative 1e-5 (a near-tie). */
  static boolean nearTie(double[] keys, int k) {
    double[] s = keys.clone();
    Arrays.sort(s);
    int n = s.length;
    for (int i = n - 1; i > 0 && i >= n - 1 - k; i--) {
      double a = s[i];
      double b = s[i - 1];
      if (a != b && Math.abs(a - b) <= 1e-5 * Math.max(Math.abs(a), Math.abs(b))) {
        return true;
      }
    }
    return false;
  }

  static double sigmoid(double x) {
    return 1 / (1 + Math.exp(-x));
  }

  /** Selection keys of one row in double (softmax is monotone: the logits themselves). */
  static boolean rowNearTie(String mode, float[] row, float[] bias, int topK, int nGroup, int topkGroup) {
    int e = row.length;
    double[] key = new double[e];
    for (int i = 0; i < e; i++) {
      key[i] = mode.equals("grouped") ? sigmoid(row[i]) + (bias == null ? 0 : bias[i]) : row[i];
    }
    if (mode.equals("softmax")) {
      // probabilities are ~exp(x): a relative gap of 1e-5 in p is ~1e-5 absolute in x
      double[] p = new double[e];
      for (int i = 0; i < e; i++) {
        p[i] = Math.exp(row[i]);
      }
      key = p;
    }
    if (nearTie(key, topK)) {
      return true;
    }
    if (mode.equals("grouped") && nGroup > 1) {
      int g = e / nGroup;
      double[] gs = new double[nGroup];
      for (int j = 0; j < nGroup; j++) {
        double[] part = Arrays.copyOfRange(key, j * g, (j + 1) * g);
        Arrays.sort(part);
        gs[j] = part[g - 1] + (g > 1 ? part[g - 2] : 0);
      }
      return nearTie(gs, topkGroup);
    }
    return false;
  }

  /** Random logits in [-4, 4), optionally bf16-representable, redrawn per row until no near-tie. */
  static float[] logits(SplittableRandom rnd, String mode, int tokens, int experts, int topK, boolean bf16, float[] bias,
      int nGroup, int topkGroup) {
    float[] x = new float[tokens * experts];
    float[] row = new float[experts];
    for (int t = 0; t < tokens; t++) {
      do {
        for (int i = 0; i < experts; i++) {
          float v = (float) (rnd.nextDouble() * 8 - 4);
          row[i] = bf16 ? Bf16.decode(Bf16.encode(v)) : v;
        }
      } while (rowNearTie(mode, row, bias, topK, nGroup, topkGroup));
      System.arraycopy(row, 0, x, t * experts, experts);
    }
    return x;
  }

  private DeviceBuffer upload(float[] x, boolean bf16) {
    if (!bf16) {
      return alloc.upload(x.length == 0 ? new float[1] : x, "logits");
    }
    short[] h = new short[Math.max(1, x.length)];
    for (int i = 0; i < x.length; i++) {
      h[i] = Bf16.encode(x[i]);
    }
    return alloc.upload(h, "logits bf16");
  }

  private static void assertSame(Routing.Result cpu, Routing.Result gpu, String what) {
    assertArrayEquals(cpu.ids(), gpu.ids(), what + ": ids");
    Tolerance.FP32.assertClose(gpu.weights(), cpu.weights(), what + ": weights");
  }

  @ParameterizedTest(name = "softmaxTopK T={0} E={1} K={2} renorm={3} bf16={4}")
  @CsvSource({
      "0, 8, 2, true, false", "1, 8, 2, true, false", "1223, 8, 2, true, false", "1223, 8, 2, true, true",
      "7, 1, 1, false, false", "1583, 7, 3, false, false", "1223, 16, 4, true, false", "1223, 17, 5, false, true",
      "1223, 64, 8, false, false", "1223, 64, 8, false, true", "1583, 128, 8, true, false", "1583, 128, 8, true, true",
      "1223, 200, 6, true, false", "1223, 256, 8, true, false", "601, 384, 8, true, true", "601, 512, 16, false, false",
      "97, 60, 60, true, false"})
  void softmaxTopKMatchesCpu(int tokens, int experts, int topK, boolean renorm, boolean bf16) {
    SplittableRandom rnd = new SplittableRandom(tokens * 31L + experts);
    float[] x = logits(rnd, "softmax", tokens, experts, topK, bf16, null, 1, 1);
    Routing.Result cpu = Routing.softmaxTopK(x, tokens, experts, topK, renorm);
    try (DeviceBuffer d = upload(x, bf16);
        RoutingGpu.DeviceResult g = RoutingGpu.softmaxTopK(alloc, d, bf16 ? LogitsType.BF16 : LogitsType.F32, tokens,
            experts, topK, renorm)) {
      assertSame(cpu, g.toHost(), "softmaxTopK");
    }
  }

  @ParameterizedTest(name = "topKSoftmax T={0} E={1} K={2} bf16={3}")
  @CsvSource({"0, 32, 4, false", "1, 32, 4, false", "1223, 32, 4, false", "1223, 32, 4, true", "1583, 128, 4, false",
      "1223, 7, 7, false", "601, 512, 32, true", "1223, 24, 1, false"})
  void topKSoftmaxMatchesCpu(int tokens, int experts, int topK, boolean bf16) {
    SplittableRandom rnd = new SplittableRandom(tokens * 17L + experts);
    float[] x = logits(rnd, "topk", tokens, experts, topK, bf16, null, 1, 1);
    Routing.Result cpu = Routing.topKSoftmax(x, tokens, experts, topK);
    try (DeviceBuffer d = upload(x, bf16);
        RoutingGpu.DeviceResult g = RoutingGpu.topKSoftmax(alloc, d, bf16 ? LogitsType.BF16 : LogitsType.F32, tokens,
            experts, topK)) {
      assertSame(cpu, g.toHost(), "topKSoftmax");
    }
  }

  @ParameterizedTest(name = "sigmoidGrouped T={0} E={1} K={2} groups={3}/{4} bias={5} renorm={6} mask={7} bf16={8}")
  @CsvSource({
      "0, 256, 8, 8, 4, true, true, NEG_INF, false",
      "1223, 256, 8, 8, 4, true, true, NEG_INF, false",  // DeepSeek-V3
      "1223, 256, 8, 8, 4, true, true, NEG_INF, true",
      "1583, 256, 8, 8, 4, false, true, NEG_INF, false",
      "1223, 256, 8, 8, 4, true, true, ZERO, false",
      "1223, 64, 6, 8, 3, true, false, NEG_INF, false",  // groups of 8: whole groups in a lane
      "1223, 128, 8, 4, 2, true, true, NEG_INF, true",   // groups of 32
      "601, 512, 8, 16, 4, true, true, NEG_INF, false",  // 32 lanes, groups of 32
      "601, 512, 8, 4, 1, true, true, NEG_INF, false",   // groups of 128: 8 lanes per group
      "1223, 16, 4, 16, 4, true, true, NEG_INF, false",  // groups of one expert
      "1223, 48, 5, 3, 2, true, true, NEG_INF, false",   // groups of 16
      "601, 384, 8, 1, 1, true, true, NEG_INF, false",   // Kimi K2: one group
      "1223, 8, 1, 1, 1, false, true, NEG_INF, false",   // K = 1 renormalises (HF)
      "1223, 8, 2, 2, 1, false, false, NEG_INF, false"})
  void sigmoidGroupedMatchesCpu(int tokens, int experts, int topK, int nGroup, int topkGroup, boolean withBias,
      boolean renorm, Routing.GroupMask mask, boolean bf16) {
    SplittableRandom rnd = new SplittableRandom(tokens * 13L + experts * 7L + nGroup);
    float[] bias = null;
    if (withBias) {
      // multiples of 2 put experts in disjoint score bands: no near-tie between biased scores
      bias = new float[experts];
      for (int i = 0; i < experts; i++) {
        bias[i] = 2f * (rnd.nextInt(3) - 1);
      }
    }
    float[] x = logits(rnd, "grouped", tokens, experts, topK, bf16, bias, nGroup, topkGroup);
    Routing.Result cpu = Routing.sigmoidGroupedTopK(x, tokens, experts, topK, bias, nGroup, topkGroup, renorm, 2.5f,
        mask);
    try (DeviceBuffer d = upload(x, bf16); DeviceBuffer db = bias == null ? null : alloc.upload(bias, "bias");
        RoutingGpu.DeviceResult g = RoutingGpu.sigmoidGroupedTopK(alloc, d, bf16 ? LogitsType.BF16 : LogitsType.F32,
            tokens, experts, topK, db, nGroup, topkGroup, renorm, 2.5f, mask)) {
      assertSame(cpu, g.toHost(), "sigmoidGroupedTopK");
    }
  }

  /**
   * ZERO masking where the kept groups have fewer than K positive scores: masked experts (score 0)
   * win in ascending index order, on both sides (HF's corner, Routing.GroupMask.ZERO).
   */
  @Test
  void zeroMaskPicksMaskedExpertsByIndex() {
    int tokens = 5;
    int experts = 64;
    float[] bias = new float[experts];
    Arrays.fill(bias, -2f);  // every biased score in (-2, -1): masked zeros beat them
    float[] x = logits(new SplittableRandom(5), "grouped", tokens, experts, 8, false, bias, 8, 2);
    Routing.Result cpu = Routing.sigmoidGroupedTopK(x, tokens, experts, 8, bias, 8, 2, true, 1f,
        Routing.GroupMask.ZERO);
    try (DeviceBuffer d = upload(x, false); DeviceBuffer db = alloc.upload(bias, "bias");
        RoutingGpu.DeviceResult g = RoutingGpu.sigmoidGroupedTopK(alloc, d, LogitsType.F32, tokens, experts, 8, db, 8, 2,
            true, 1f, Routing.GroupMask.ZERO)) {
      Routing.Result r = g.toHost();
      assertSame(cpu, r, "ZERO mask");
      for (int t = 0; t < tokens; t++) {
        // the 6 groups not kept hold 48 masked experts; the 8 lowest of them come first
        int[] row = Arrays.copyOfRange(r.ids(), t * 8, t * 8 + 8);
        for (int j = 1; j < 8; j++) {
          assertTrue(row[j] > row[j - 1], "token " + t + ": masked experts in index order " + Arrays.toString(row));
        }
      }
    }
  }

  /**
   * Exact ties go to the lower expert index (moe-ops-semantics §1.5): all-equal rows select experts
   * 0..K-1; a row with two equal maxima at 9 and 3 selects 3 first; for DeepSeek, identical groups
   * are kept in group order.
   */
  @Test
  void exactTiesGoToLowerIndex() {
    int experts = 256;
    int tokens = 3;
    float[] x = new float[tokens * experts];
    Arrays.fill(x, 0, experts, 0.5f);                  // token 0: all equal
    for (int i = 0; i < experts; i++) {
      x[experts + i] = -1f;                            // token 1: -1 but for two equal maxima
      x[2 * experts + i] = (i % 32) * 0.01f;          // token 2: eight identical groups
    }
    x[experts + 9] = 3f;
    x[experts + 3] = 3f;
    int[] zeroToSeven = {0, 1, 2, 3, 4, 5, 6, 7};
    try (DeviceBuffer d = upload(x, false)) {
      try (RoutingGpu.DeviceResult g = RoutingGpu.softmaxTopK(alloc, d, LogitsType.F32, tokens, experts, 8, true)) {
        Routing.Result r = g.toHost();
        assertArrayEquals(zeroToSeven, Arrays.copyOfRange(r.ids(), 0, 8), "all-equal row");
        assertArrayEquals(new int[] {3, 9, 0, 1, 2, 4, 5, 6}, Arrays.copyOfRange(r.ids(), 8, 16), "tied maxima");
        assertSame(Routing.softmaxTopK(x, tokens, experts, 8, true), r, "ties softmaxTopK");
      }
      try (RoutingGpu.DeviceResult g = RoutingGpu.topKSoftmax(alloc, d, LogitsType.F32, tokens, experts, 4)) {
        Routing.Result r = g.toHost();
        assertArrayEquals(new int[] {0, 1, 2, 3}, Arrays.copyOfRange(r.ids(), 0, 4), "all-equal row");
        assertArrayEquals(new int[] {3, 9, 0, 1}, Arrays.copyOfRange(r.ids(), 4, 8), "tied maxima");
        assertSame(Routing.topKSoftmax(x, tokens, experts, 4), r, "ties topKSoftmax");
      }
      try (RoutingGpu.DeviceResult g = RoutingGpu.sigmoidGroupedTopK(alloc, d, LogitsType.F32, tokens, experts, 8,
          null, 8, 4, true, 2.5f, Routing.GroupMask.NEG_INF)) {
        Routing.Result r = g.toHost();
        assertArrayEquals(zeroToSeven, Arrays.copyOfRange(r.ids(), 0, 8), "all-equal row");
        // token 2: every group holds 0.00..0.31; the best of each group is its expert 31, ties across
        // groups keep groups 0..3, so the picks are 31, 63, 95, 127, then 30, 62, 94, 126
        assertArrayEquals(new int[] {31, 63, 95, 127, 30, 62, 94, 126}, Arrays.copyOfRange(r.ids(), 16, 24),
            "identical groups");
        assertSame(Routing.sigmoidGroupedTopK(x, tokens, experts, 8, null, 8, 4, true, 2.5f), r, "ties grouped");
      }
    }
  }

  /** Outputs written into caller buffers at an offset (views), on an explicit stream. */
  @Test
  void writesIntoCallerBuffersOnExplicitStream() {
    int tokens = 33;
    int experts = 128;
    float[] x = logits(new SplittableRandom(3), "softmax", tokens, experts, 8, false, null, 1, 1);
    try (CudaStream other = CudaStream.create(); DeviceBuffer d = upload(x, false);
        DeviceBuffer out = alloc.allocate(16 + 8L * tokens * 8, "out")) {
      alloc.stream().synchronize();
      DeviceBuffer ids = out.view(16, 4L * tokens * 8);
      DeviceBuffer w = out.view(16 + 4L * tokens * 8, 4L * tokens * 8);
      RoutingGpu.softmaxTopK(d, LogitsType.F32, tokens, experts, 8, false, ids, w, other);
      other.synchronize();
      Routing.Result cpu = Routing.softmaxTopK(x, tokens, experts, 8, false);
      assertSame(cpu, new Routing.Result(tokens, 8, ids.toInts(tokens * 8), w.toFloats(tokens * 8)), "views");
    }
  }
}
