package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.moespark.ops.MoePermuteTest.assertMessage;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

class MoeDispatchTest {

  @Test
  void seedExampleShapes() {
    // x [1280, 768], gating rand [1280, 48], k = 6, topk_only_mode -> permute_input [7680, 768].
    Random rnd = new Random(1);
    int n = 1280;
    int d = 768;
    int e = 48;
    float[] x = new float[n * d];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    float[] gating = new float[n * e];
    for (int i = 0; i < gating.length; i++) {
      gating[i] = rnd.nextFloat();
    }
    MoeDispatch.Result<float[]> r = MoeDispatch.dispatch(x, n, d, gating, e, 6, false, true);
    assertEquals(7680 * 768, r.permuteInput().length);
    assertEquals(48, r.tokenNumsPerExpert().length);
    assertEquals(7680L, r.tokenNumsPerExpert()[47], "inclusive prefix sum ends at N*k");
    assertEquals(6 * 1280, r.permuteIndicesPerToken().length);
    assertEquals(1280 * 6, r.expertScalesFloat().length);
    assertEquals(1280 * 6, r.topKIndices().length);
    // every permuted row is a bit-exact copy of its token
    for (int j = 0; j < 6; j++) {
      for (int t = 0; t < n; t += 97) {
        int dest = r.permuteIndicesPerToken()[j * n + t];
        Tolerance.assertBitEqual(Arrays.copyOfRange(r.permuteInput(), dest * d, dest * d + d),
            Arrays.copyOfRange(x, t * d, t * d + d), "slot " + j + " token " + t);
      }
    }
  }

  @Test
  void handComputedTopkOnly() {
    // N = 3, E = 4, k = 2 on probabilities:
    // t0 [0.1, 0.5, 0.3, 0.1] -> experts 1, 2 ; t1 [0.4, 0.4, 0.1, 0.1] -> 0, 1 (tie: lower first)
    // t2 [0.0, 0.0, 0.2, 0.8] -> 3, 2
    float[] g = {0.1f, 0.5f, 0.3f, 0.1f, 0.4f, 0.4f, 0.1f, 0.1f, 0f, 0f, 0.2f, 0.8f};
    short[] x = {10, 11, 20, 21, 30, 31}; // d = 2, distinct bits per token
    MoeDispatch.Result<short[]> r = MoeDispatch.dispatch(x, 3, 2, g, 4, 2, false, true);
    assertArrayEquals(new int[] {1, 2, 0, 1, 3, 2}, r.topKIndices());
    Tolerance.assertBitEqual(r.expertScalesFloat(), new float[] {0.5f, 0.3f, 0.4f, 0.4f, 0.8f, 0.2f}, "raw weights");
    // rows by expert then token: e0: t1 | e1: t0, t1 | e2: t0, t2 | e3: t2
    // -> inclusive prefix sum [1, 3, 5, 6]
    assertArrayEquals(new long[] {1, 3, 5, 6}, r.tokenNumsPerExpert());
    // permute_indices_per_token [k][N]: slot 0: t0->1 (e1 first), t1->0, t2->5 ; slot 1: t0->3, t1->2, t2->4
    assertArrayEquals(new int[] {1, 0, 5, 3, 2, 4}, r.permuteIndicesPerToken());
    assertArrayEquals(new short[] {20, 21, 10, 11, 20, 21, 10, 11, 30, 31, 30, 31}, r.permuteInput());
  }

  @Test
  void expertsWithoutTokensRepeatThePrefix() {
    float[] g = {0f, 0f, 1f, 0.5f, /* t1 */ 0f, 0f, 0.9f, 1f};
    MoeDispatch.Maps m = MoeDispatch.maps(g, 2, 4, 1, false, true);
    assertArrayEquals(new long[] {0, 0, 1, 2}, m.tokenNumsPerExpert());
  }

  @Test
  void topkOnlyRanksValuesBelowMinusOne() {
    // Upstream seeds its arg-max with (0, -1.0) and would return expert 0 with weight -1 here.
    MoeDispatch.Maps m = MoeDispatch.maps(new float[] {-3f, -2f, -5f}, 1, 3, 1, false, true);
    assertArrayEquals(new int[] {1}, m.topKIndices());
    Tolerance.assertBitEqual(m.expertScalesFloat(), new float[] {-2f}, "raw value");
  }

  @Test
  void defaultModeIsSoftmaxTopKWithoutRenormalisation() {
    float[] logits = {1, 2, 3, 4};
    MoeDispatch.Maps m = MoeDispatch.maps(logits, 1, 4, 2, false, false);
    assertArrayEquals(new int[] {3, 2}, m.topKIndices());
    double z = Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(4);
    Tolerance.FP32.assertClose(m.expertScalesFloat(), new float[] {(float) (Math.exp(4) / z), (float) (Math.exp(3) / z)},
        "softmax probs");
  }

  @Test
  void groupMoeTakesTheArgmaxOfEachGroupWithItsInGroupProbability() {
    // E = 6, k = 2 -> groups {0,1,2}, {3,4,5}
    float[] g = {1, 3, 2, 0, 0, 5};
    MoeDispatch.Maps m = MoeDispatch.maps(g, 1, 6, 2, true, false);
    assertArrayEquals(new int[] {1, 5}, m.topKIndices());
    double z0 = Math.exp(1) + Math.exp(3) + Math.exp(2);
    double z1 = 2 + Math.exp(5);
    Tolerance.FP32.assertClose(m.expertScalesFloat(), new float[] {(float) (Math.exp(3) / z0), (float) (Math.exp(5) / z1)},
        "in-group probabilities");
    // ties within a group -> lower index; E = 64 (a power of two: upstream would ignore group_moe)
    float[] flat = new float[64];
    MoeDispatch.Maps t = MoeDispatch.maps(flat, 1, 64, 4, true, false);
    assertArrayEquals(new int[] {0, 16, 32, 48}, t.topKIndices());
    Tolerance.FP32.assertClose(t.expertScalesFloat(), new float[] {1 / 16f, 1 / 16f, 1 / 16f, 1 / 16f}, "uniform");
    assertMessage(() -> MoeDispatch.maps(new float[10], 1, 10, 3, true, false), "divisible by moeTopk (3)");
  }

  @Test
  void mapsMatchNaiveStableSortOverSweep() {
    Random rnd = new Random(4);
    for (int n : new int[] {0, 1, 1280}) {
      for (int e : new int[] {4, 48, 60, 64}) {
        for (int k : new int[] {1, 2, 6}) {
          if (k > e) {
            continue;
          }
          float[] g = new float[n * e];
          for (int i = 0; i < g.length; i++) {
            g[i] = (float) rnd.nextGaussian();
          }
          MoeDispatch.Maps m = MoeDispatch.maps(g, n, e, k, false, false);
          String what = "N=" + n + " E=" + e + " k=" + k;
          // ids: top-k of the logits (softmax is monotone), value desc / index asc
          int[] ids = new int[n * k];
          for (int t = 0; t < n; t++) {
            final int tt = t;
            int[] top = IntStream.range(0, e).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> -g[tt * e + i]).thenComparingInt(i -> i))
                .limit(k).mapToInt(Integer::intValue).toArray();
            System.arraycopy(top, 0, ids, t * k, k);
          }
          assertArrayEquals(ids, m.topKIndices(), what + " ids");
          // stable sort of flattened positions by expert
          Integer[] order = IntStream.range(0, n * k).boxed().toArray(Integer[]::new);
          Arrays.sort(order, Comparator.comparingInt(p -> ids[p])); // Arrays.sort on objects is stable
          int[] perm = new int[n * k];
          for (int dest = 0; dest < order.length; dest++) {
            int p = order[dest];
            perm[(p % k) * n + p / k] = dest;
          }
          assertArrayEquals(perm, m.permuteIndicesPerToken(), what + " permute_indices_per_token");
          long[] prefix = new long[e];
          for (int ex = 0; ex < e; ex++) {
            for (int id : ids) {
              if (id <= ex) {
                prefix[ex]++;
              }
            }
          }
          assertArrayEquals(prefix, m.tokenNumsPerExpert(), what + " token_nums_per_expert");
        }
      }
    }
  }

  @Test
  void rejectsBadArguments() {
    assertMessage(() -> MoeDispatch.maps(new float[8], 2, 4, 5, false, false), "moeTopk");
    assertMessage(() -> MoeDispatch.maps(new float[7], 2, 4, 1, false, false), "gatingOutput must have 8");
    float[] nan = new float[8];
    nan[6] = Float.NaN;
    assertMessage(() -> MoeDispatch.maps(nan, 2, 4, 1, false, true), "gatingOutput[1, 2] is NaN");
    assertMessage(() -> MoeDispatch.dispatch(new short[5], 2, 3, new float[8], 4, 1, false, false), "x must have 6");
  }
}
