package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.formats.Bf16;
import org.moespark.testing.Tolerance;

class MoePermuteTest {

  /** The seed example (moe-ops-semantics.md §2.6): S = 3, H = 128, K = 8, E = 3, A = 2. */
  static final int[] SEED_ROUTE = {
      -1, 0, -1, -1, 2, -1, -1, -1,
      1, -1, -1, -1, -1, -1, -1, -1,
      -1, -1, -1, -1, -1, -1, 1, -1};
  static final float[] SEED_PROB = {
      0, 0.6f, 0, 0, 0.4f, 0, 0, 0,
      1, 0, 0, 0, 0, 0, 0, 0,
      0, 0, 0, 0, 0, 0, 1, 0};

  static short[] randomBf16(Random rnd, int n) {
    short[] x = new short[n];
    for (int i = 0; i < n; i++) {
      x[i] = Bf16.encode((float) rnd.nextGaussian());
    }
    return x;
  }

  @Test
  void seedExampleReproducedExactly() {
    int h = 128;
    short[] x = randomBf16(new Random(1), 3 * h);
    MoePermute.Result<short[]> r = MoePermute.permute(x, 3, h, SEED_ROUTE, SEED_PROB, 8, 3, new int[] {1, 2, 1}, 2, true);
    assertEquals(6, r.rows());
    assertArrayEquals(new int[] {0, -1, 4, -1, 2, -1, -1, 3, -1}, r.zippedExpertwiseRowmap(), "rowmap");
    Tolerance.assertBitEqual(r.tokenProbUnzipped(), new float[] {0.6f, 0, 1, 1, 0.4f, 0}, "token_prob_unzipped");
    assertArrayEquals(new int[] {0, -1, 1, 1, 2, -1}, r.expertIndices(), "expert indices");
    assertArrayEquals(new int[] {0, 2, 4, 6}, r.maps().expertRowOffsets());
    int[] sourceOfRow = {0, -1, 1, 2, 0, -1};
    for (int row = 0; row < 6; row++) {
      short[] got = Arrays.copyOfRange(r.hiddenStatesUnzipped(), row * h, (row + 1) * h);
      short[] want = sourceOfRow[row] < 0 ? new short[h]
          : Arrays.copyOfRange(x, sourceOfRow[row] * h, (sourceOfRow[row] + 1) * h);
      assertArrayEquals(want, got, "row " + row);
    }
    assertNull(r.scaleUnzipped());
  }

  /** An independent reference: expert-major loop (the implementation is token-major). */
  record Ref(int rows, int[] rowmap, float[] prob, int[] expertIdx, int[] src) {}

  static Ref reference(int[] route, float[] probs, int s, int k, int e, int a) {
    List<List<int[]>> perExpert = new ArrayList<>();
    for (int ex = 0; ex < e; ex++) {
      List<int[]> list = new ArrayList<>();
      for (int t = 0; t < s; t++) {
        for (int j = 0; j < k; j++) {
          if (route[t * k + j] == ex) {
            list.add(new int[] {t, j});
          }
        }
      }
      perExpert.add(list);
    }
    int rows = 0;
    for (List<int[]> l : perExpert) {
      rows += (l.size() + a - 1) / a * a;
    }
    int[] rowmap = new int[s * e];
    Arrays.fill(rowmap, -1);
    float[] prob = new float[rows];
    int[] idx = new int[rows];
    int[] src = new int[rows];
    Arrays.fill(idx, -1);
    Arrays.fill(src, -1);
    int base = 0;
    for (int ex = 0; ex < e; ex++) {
      List<int[]> l = perExpert.get(ex);
      for (int i = 0; i < l.size(); i++) {
        int t = l.get(i)[0];
        rowmap[t * e + ex] = base + i;
        prob[base + i] = probs[t * k + l.get(i)[1]];
        idx[base + i] = ex;
        src[base + i] = t;
      }
      base += (l.size() + a - 1) / a * a;
    }
    return new Ref(rows, rowmap, prob, idx, src);
  }

  /** Random routemap: each token gets 0..min(K,E) distinct experts at random slots, -1 elsewhere. */
  static int[] randomRoute(Random rnd, int s, int k, int e, double pNowhere) {
    int[] route = new int[s * k];
    Arrays.fill(route, -1);
    List<Integer> experts = new ArrayList<>();
    for (int i = 0; i < e; i++) {
      experts.add(i);
    }
    for (int t = 0; t < s; t++) {
      if (rnd.nextDouble() < pNowhere) {
        continue;
      }
      int n = 1 + rnd.nextInt(Math.min(k, e));
      java.util.Collections.shuffle(experts, rnd);
      List<Integer> slots = new ArrayList<>();
      for (int j = 0; j < k; j++) {
        slots.add(j);
      }
      java.util.Collections.shuffle(slots, rnd);
      for (int i = 0; i < n; i++) {
        // skew towards low experts so that high experts often get no tokens
        int ex = e > 8 && rnd.nextBoolean() ? experts.get(i) % Math.max(1, e / 4) : experts.get(i);
        boolean dup = false;
        for (int j = 0; j < k; j++) {
          dup |= route[t * k + j] == ex;
        }
        if (!dup) {
          route[t * k + slots.get(i)] = ex;
        }
      }
    }
    return route;
  }

  static int[] histogram(int[] route, int e) {
    int[] h = new int[e];
    for (int id : route) {
      if (id >= 0) {
        h[id]++;
      }
    }
    return h;
  }

  @Test
  void mapsMatchNaiveReferenceOverSweep() {
    Random rnd = new Random(42);
    int cases = 0;
    for (int s : new int[] {0, 1, 3, 1223}) {
      for (int e : new int[] {1, 3, 7, 16, 64, 256}) {
        for (int k : new int[] {1, 2, 5, 8}) {
          for (int a : new int[] {1, 2, 16, 128}) {
            int[] route = randomRoute(rnd, s, k, e, 0.1);
            float[] probs = new float[s * k];
            for (int i = 0; i < probs.length; i++) {
              probs[i] = rnd.nextFloat();
            }
            int h = 5;
            float[] x = new float[s * h];
            for (int i = 0; i < x.length; i++) {
              x[i] = rnd.nextFloat() - 0.5f;
            }
            MoePermute.Result<float[]> r = MoePermute.permute(x, s, h, route, probs, k, e, histogram(route, e), a, true);
            Ref ref = reference(route, probs, s, k, e, a);
            String what = "S=" + s + " E=" + e + " K=" + k + " A=" + a;
            assertEquals(ref.rows, r.rows(), what + " rows");
            assertArrayEquals(ref.rowmap, r.zippedExpertwiseRowmap(), what + " rowmap");
            Tolerance.assertBitEqual(r.tokenProbUnzipped(), ref.prob, what + " probs");
            assertArrayEquals(ref.expertIdx, r.expertIndices(), what + " expert indices");
            float[] want = new float[ref.rows * h];
            for (int row = 0; row < ref.rows; row++) {
              if (ref.src[row] >= 0) {
                System.arraycopy(x, ref.src[row] * h, want, row * h, h);
              }
            }
            Tolerance.assertBitEqual(r.hiddenStatesUnzipped(), want, what + " data");
            for (int ex = 0; ex < e; ex++) {
              int seg = r.maps().expertRowOffsets()[ex + 1] - r.maps().expertRowOffsets()[ex];
              assertEquals(0, seg % a, what + " segment of expert " + ex + " is a multiple of A");
            }
            cases++;
          }
        }
      }
    }
    assertEquals(4 * 6 * 4 * 4, cases);
  }

  @Test
  void extendedExpertLimit384() {
    Random rnd = new Random(384);
    int s = 1583;
    int k = 16;
    int e = MoePermute.MAX_EXPERTS;
    int[] route = randomRoute(rnd, s, k, e, 0.02);
    float[] probs = new float[s * k];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = rnd.nextFloat();
    }
    MoePermute.Maps m = MoePermute.maps(route, probs, s, k, e, histogram(route, e), 128);
    Ref ref = reference(route, probs, s, k, e, 128);
    assertEquals(ref.rows, m.rows());
    assertArrayEquals(ref.rowmap, m.zippedExpertwiseRowmap());
    Tolerance.assertBitEqual(m.tokenProbUnzipped(), ref.prob, "probs");
    assertArrayEquals(ref.expertIdx, m.expertIndices());
  }

  @Test
  void doGatherFalseGivesIdenticalMaps() {
    Random rnd = new Random(7);
    int s = 1223;
    int k = 8;
    int e = 64;
    int h = 7169 / 100; // 71, an odd width
    int[] route = randomRoute(rnd, s, k, e, 0.05);
    float[] probs = new float[s * k];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = rnd.nextFloat();
    }
    short[] x = randomBf16(rnd, s * h);
    int[] tpe = histogram(route, e);
    MoePermute.Result<short[]> g = MoePermute.permute(x, s, h, route, probs, k, e, tpe, 16, true);
    MoePermute.Result<short[]> n = MoePermute.permute(x, s, h, route, probs, k, e, tpe, 16, false);
    assertArrayEquals(g.zippedExpertwiseRowmap(), n.zippedExpertwiseRowmap());
    Tolerance.assertBitEqual(n.tokenProbUnzipped(), g.tokenProbUnzipped(), "probs");
    assertArrayEquals(g.expertIndices(), n.expertIndices());
    assertEquals(g.hiddenStatesUnzipped().length, n.hiddenStatesUnzipped().length);
    // same input -> same bits
    MoePermute.Result<short[]> again = MoePermute.permute(x.clone(), s, h, route.clone(), probs.clone(), k, e, tpe, 16, true);
    assertArrayEquals(g.hiddenStatesUnzipped(), again.hiddenStatesUnzipped());
    assertArrayEquals(g.zippedExpertwiseRowmap(), again.zippedExpertwiseRowmap());
  }

  @Test
  void fp8BytesAndScalesCopiedVerbatim() {
    Random rnd = new Random(9);
    int s = 37;
    int h = 300; // 3 scale columns, the last partial
    int k = 4;
    int e = 7;
    int[] route = randomRoute(rnd, s, k, e, 0.2);
    float[] probs = new float[s * k];
    byte[] x = new byte[s * h];
    rnd.nextBytes(x);
    float[] scale = new float[s * 3];
    for (int i = 0; i < scale.length; i++) {
      scale[i] = (float) rnd.nextGaussian(); // negative scales are legal
    }
    scale[4] = Float.NaN; // never interpreted
    int[] tpe = histogram(route, e);
    MoePermute.Result<byte[]> r = MoePermute.permuteFp8(x, scale, s, h, route, probs, k, e, tpe, 4, true);
    Ref ref = reference(route, probs, s, k, e, 4);
    assertArrayEquals(ref.rowmap, r.zippedExpertwiseRowmap());
    for (int row = 0; row < ref.rows; row++) {
      byte[] got = Arrays.copyOfRange(r.hiddenStatesUnzipped(), row * h, (row + 1) * h);
      float[] gotS = Arrays.copyOfRange(r.scaleUnzipped(), row * 3, row * 3 + 3);
      int t = ref.src[row];
      assertArrayEquals(t < 0 ? new byte[h] : Arrays.copyOfRange(x, t * h, (t + 1) * h), got, "fp8 row " + row);
      Tolerance.assertBitEqual(gotS, t < 0 ? new float[3] : Arrays.copyOfRange(scale, t * 3, t * 3 + 3),
          "scale row " + row);
    }
    // UE8M0 scales packed four per int32: ceil(ceil(300/128)/4) = 1 word per token.
    int[] packed = new int[s];
    for (int i = 0; i < s; i++) {
      packed[i] = rnd.nextInt();
    }
    int[] pu = MoePermute.gather(r.maps(), packed, 1);
    for (int row = 0; row < ref.rows; row++) {
      assertEquals(ref.src[row] < 0 ? 0 : packed[ref.src[row]], pu[row], "packed scale row " + row);
    }
  }

  @Test
  void tokensRoutedNowhereAndEmptyExperts() {
    int[] route = {-1, -1, 2, -1, -1, -1};
    MoePermute.Maps m = MoePermute.maps(route, new float[6], 3, 2, 4, new int[] {0, 0, 1, 0}, 8);
    assertEquals(8, m.rows());
    assertArrayEquals(new int[] {-1, -1, -1, -1, -1, -1, 0, -1, -1, -1, -1, -1}, m.zippedExpertwiseRowmap());
    assertArrayEquals(new int[] {0, 0, 0, 8, 8}, m.expertRowOffsets());
    assertTrue(m.isPadding(1) && !m.isPadding(0));
    MoePermute.Maps empty = MoePermute.maps(new int[0], new float[0], 0, 8, 3, new int[3], 2);
    assertEquals(0, empty.rows());
  }

  @Test
  void rejectsBadArguments() {
    float[] p = new float[6];
    int[] tpe = {1, 1, 0};
    assertMessage(() -> MoePermute.maps(new int[] {0, 0, -1, -1, -1, -1}, p, 3, 2, 3, new int[] {2, 0, 0}, 1),
        "names expert 0 twice");
    assertMessage(() -> MoePermute.maps(new int[] {0, 3, -1, -1, -1, -1}, p, 3, 2, 3, tpe, 1),
        "expertRoutemapTopk[0, 1] = 3");
    assertMessage(() -> MoePermute.maps(new int[] {0, -2, -1, -1, -1, -1}, p, 3, 2, 3, tpe, 1),
        "expertRoutemapTopk[0, 1] = -2");
    assertMessage(() -> MoePermute.maps(new int[] {0, 1, -1, -1, -1, -1}, p, 3, 2, 3, new int[] {1, 2, 0}, 1),
        "tokensPerExpert[1] = 2");
    assertMessage(() -> MoePermute.maps(new int[] {0, 1, -1, -1, -1, -1}, p, 3, 2, 3, tpe, 0), "paddingAlignment");
    assertMessage(() -> MoePermute.maps(new int[6], p, 3, 2, 385, new int[385], 1), "numExperts");
    assertMessage(() -> MoePermute.maps(new int[5], p, 3, 2, 3, tpe, 1), "expertRoutemapTopk must have 6");
    assertMessage(() -> MoePermute.maps(new int[6], new float[5], 3, 2, 3, tpe, 1), "expertProbTopk must have 6");
    assertMessage(() -> MoePermute.maps(new int[6], p, 3, 2, 3, new int[2], 1), "tokensPerExpert must have 3");
    assertMessage(() -> MoePermute.permute(new short[10], 70000, 70000, new int[0], new float[0], 1, 1, new int[1], 1,
        true), "32-bit");
    assertMessage(() -> MoePermute.permuteFp8(new byte[3 * 128], new float[2], 3, 128, new int[] {0, -1, -1},
        new float[3], 1, 1, new int[] {1}, 1, true), "scale must have 3");
  }

  static void assertMessage(org.junit.jupiter.api.function.Executable call, String fragment) {
    IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, call);
    assertTrue(ex.getMessage().contains(fragment), "message '" + ex.getMessage() + "' should contain '" + fragment + "'");
  }
}
