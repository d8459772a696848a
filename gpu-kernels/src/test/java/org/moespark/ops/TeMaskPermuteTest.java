package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.moespark.ops.TeTestSupport.assertRejects;
import static org.moespark.ops.TeTestSupport.assertShortsEqual;
import static org.moespark.ops.TeTestSupport.bf16;
import static org.moespark.ops.TeTestSupport.f32;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.moespark.testing.Tolerance;

/** TE mask-map permute / unpermute / pad (spec moe-ops-semantics §8, §10, §15). */
class TeMaskPermuteTest {

  // ---------------------------------------------------------------- spec example §8.1 (TE-TRIW docstring)

  private static final byte[] EXAMPLE_MAP = {
      1, 1, 0,
      1, 0, 1,
      0, 0, 1,
      1, 1, 0,
      0, 0, 0};

  /** The docstring's pass-3 result with its "useless values" pinned to -1. */
  private static final int[] EXAMPLE_ROW_ID_MAP = {
      3, 0, -1, 1, 0, -1, 2,
      5, 1, -1, 2, 0, -1, 2,
      6, -1, -1, 2, -1, -1, 1,
      4, 2, -1, 1, 0, -1, 2,
      -1, -1, -1, -1, -1, -1, 0};

  /** Token t's row is t + 1 + h/8. */
  private static float[] tokens(int n, int hidden) {
    float[] x = new float[n * hidden];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < hidden; h++) {
        x[t * hidden + h] = t + 1 + h / 8f;
      }
    }
    return x;
  }

  /** Rows of x in the given order; -1 = a zero row. */
  private static float[] rows(float[] x, int hidden, int... order) {
    float[] out = new float[order.length * hidden];
    for (int i = 0; i < order.length; i++) {
      if (order[i] >= 0) {
        System.arraycopy(x, order[i] * hidden, out, i * hidden, hidden);
      }
    }
    return out;
  }

  @Test
  void workedExampleRowIdMap() {
    assertArrayEquals(EXAMPLE_ROW_ID_MAP, TeMaskPermute.makeRowIdMap(EXAMPLE_MAP, 5, 3));
  }

  @Test
  void workedExamplePermuteIsExpertMajorTokenAscending() {
    float[] x = tokens(5, 3);
    TeMaskPermute.Permuted<float[]> r = TeMaskPermute.moePermute(x, 5, 3, EXAMPLE_MAP, 3, 7);
    assertArrayEquals(EXAMPLE_ROW_ID_MAP, r.rowIdMap());
    Tolerance.assertBitEqual(r.output(), rows(x, 3, 0, 1, 3, 0, 3, 1, 2), "permuted [x0,x1,x3 | x0,x3 | x1,x2]");
  }

  @Test
  void workedExamplePermuteWithProbsAndZeroProbRows() {
    float[] x = tokens(5, 3);
    float[] probs = {
        0.75f, 0.25f, 0,
        0.0f, 0, 1.0f,   // t1 -> e0 with prob exactly 0: its e0 row is written as zeros
        0, 0, 1.0f,
        -0.0f, 1.0f, 0,  // t3 -> e0 with prob -0.0: also zeroed
        0, 0, 0};
    TeMaskPermute.PermutedWithProbs<float[]> r = TeMaskPermute.moePermuteWithProbs(x, 5, 3, probs, EXAMPLE_MAP, 3, 7);
    Tolerance.assertBitEqual(r.output(), rows(x, 3, 0, -1, -1, 0, 3, 1, 2), "zero-prob slots give zero rows");
    Tolerance.assertBitEqual(r.permutedProbs(), new float[] {0.75f, 0.0f, -0.0f, 0.25f, 1.0f, 1.0f, 1.0f},
        "permuted probs (zeros copied as they are)");
  }

  @Test
  void workedExamplePaddedToFour() {
    // tokens_per_expert [3,2,2] -> target [4,4,4], pad_offsets = excl. cumsum([1,2,2]) = [0,1,3]
    float[] x = tokens(5, 3);
    float[] probs = new float[15];
    for (int i = 0; i < 15; i++) {
      probs[i] = EXAMPLE_MAP[i] == 1 ? (i + 1) / 16f : 0f;
    }
    TeMaskPermute.PaddedPermuted<float[]> r =
        TeMaskPermute.moePermuteAndPadWithProbs(x, 5, 3, probs, EXAMPLE_MAP, 3, new int[] {3, 2, 2}, 4);
    assertArrayEquals(new int[] {4, 4, 4}, r.targetTokensPerExpert());
    assertArrayEquals(new int[] {0, 1, 3}, r.padOffsets());
    assertArrayEquals(EXAMPLE_ROW_ID_MAP, r.rowIdMap(), "the padded op returns the unpadded map");
    Tolerance.assertBitEqual(r.output(), rows(x, 3, 0, 1, 3, -1, 0, 3, -1, -1, 1, 2, -1, -1), "padded rows");
    Tolerance.assertBitEqual(r.permutedProbs(), new float[] {
        probs[0], probs[3], probs[9], 0, probs[1], probs[10], 0, 0, probs[5], probs[8], 0, 0}, "padded probs");
    // unpermute with pad_offsets reads the shifted rows: each routed token's rows sum back to 2 * x
    float[] back = TeMaskPermute.moeUnpermute(r.output(), 12, 3, r.rowIdMap(), 3, null, 5, r.padOffsets());
    float[] expected = new float[15];
    for (int t = 0; t < 4; t++) {
      for (int h = 0; h < 3; h++) {
        expected[t * 3 + h] = (t == 2 ? 1 : 2) * x[t * 3 + h];
      }
    }
    Tolerance.assertBitEqual(back, expected, "unpad + unpermute");
  }

  @Test
  void alignedCountsNeedNoPadOffsets() {
    float[] x = tokens(5, 3);
    TeMaskPermute.PaddedPermuted<float[]> r =
        TeMaskPermute.moePermuteAndPadWithProbs(x, 5, 3, new float[15], EXAMPLE_MAP, 3, new int[] {3, 2, 2}, 1);
    assertNull(r.padOffsets(), "upstream returns pad_offsets = None when nothing is padded");
    assertArrayEquals(new int[] {3, 2, 2}, r.targetTokensPerExpert());
    assertEquals(21, r.output().length);
  }

  @Test
  void unpermuteSumsInDescendingExpertOrder() {
    // one token routed to e0, e1, e2 whose outputs are 1, 2^-24, 2^-24. Descending expert order:
    // 2^-24 + 2^-24 = 2^-23, + 1 = 1 + 2^-23 (0x3F800001). Ascending would give 1.0.
    float tiny = Math.scalb(1f, -24);
    int[] map = TeMaskPermute.makeRowIdMap(new byte[] {1, 1, 1}, 1, 3);
    assertArrayEquals(new int[] {2, 1, 0, 2, 1, 0, 3}, map);
    float[] out = TeMaskPermute.moeUnpermute(new float[] {1f, tiny, tiny}, 3, 1, map, 3, null, 1, null);
    assertEquals(0x3F800001, Float.floatToRawIntBits(out[0]));
    float[] weighted = TeMaskPermute.moeUnpermute(new float[] {1f, tiny, tiny}, 3, 1, map, 3,
        new float[] {1f, 1f, 1f}, 1, null);
    assertEquals(0x3F800001, Float.floatToRawIntBits(weighted[0]));
  }

  @Test
  void bf16UnpermuteRoundsOnceAtTheEnd() {
    // 1 + 2^-8 + 2^-8 accumulated in fp32 = 1 + 2^-7, exactly bf16 0x3F81 (bf16 steps would give 0x3F80).
    int[] map = TeMaskPermute.makeRowIdMap(new byte[] {1, 1, 1}, 1, 3);
    short[] in = {(short) 0x3F80, (short) 0x3B80, (short) 0x3B80};
    assertEquals(0x3F81, TeMaskPermute.moeUnpermute(in, 3, 1, map, 3, null, 1, null)[0] & 0xFFFF);
  }

  // ---------------------------------------------------------------- independent naive references

  /** PyTorch reference: arange(N).expand(E, N).masked_select(routing_map.T) -> dst[t][e] (or -1). */
  static int[] naiveDst(byte[] map, int n, int numExperts) {
    int[] dst = new int[n * numExperts];
    Arrays.fill(dst, -1);
    int i = 0;
    for (int e = 0; e < numExperts; e++) {
      for (int t = 0; t < n; t++) {
        if (map[t * numExperts + e] == 1) {
          dst[t * numExperts + e] = i++;
        }
      }
    }
    return dst;
  }

  static int[] naiveRowIdMap(byte[] map, int n, int numExperts) {
    int[] dst = naiveDst(map, n, numExperts);
    int width = 2 * numExperts + 1;
    int[] out = new int[n * width];
    Arrays.fill(out, -1);
    for (int t = 0; t < n; t++) {
      List<int[]> pairs = new ArrayList<>();
      for (int e = 0; e < numExperts; e++) {
        if (dst[t * numExperts + e] >= 0) {
          pairs.add(new int[] {dst[t * numExperts + e], e});
        }
      }
      pairs.sort(Comparator.comparingInt((int[] p) -> p[0]).reversed());
      for (int i = 0; i < pairs.size(); i++) {
        out[t * width + i] = pairs.get(i)[0];
        out[t * width + numExperts + i] = pairs.get(i)[1];
      }
      out[t * width + 2 * numExperts] = pairs.size();
    }
    return out;
  }

  /** permuted[dst(t,e)] = x[t] (zero row when probs given and the prob is 0). */
  static <T> T naivePermute(T x, int hidden, byte[] map, float[] probs, int n, int numExperts, T out) {
    int[] dst = naiveDst(map, n, numExperts);
    for (int t = 0; t < n; t++) {
      for (int e = 0; e < numExperts; e++) {
        int r = dst[t * numExperts + e];
        if (r >= 0 && (probs == null || probs[t * numExperts + e] != 0f)) {
          System.arraycopy(x, t * hidden, out, r * hidden, hidden);
        }
      }
    }
    return out;
  }

  /** probs.T.masked_select(routing_map.T). */
  static float[] naivePermutedProbs(byte[] map, float[] probs, int n, int numExperts) {
    List<Float> out = new ArrayList<>();
    for (int e = 0; e < numExperts; e++) {
      for (int t = 0; t < n; t++) {
        if (map[t * numExperts + e] == 1) {
          out.add(probs[t * numExperts + e]);
        }
      }
    }
    float[] a = new float[out.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = out.get(i);
    }
    return a;
  }

  /** Per token, experts from E-1 down to 0: acc = acc + in[dst] * p, fp32, then out = acc. */
  static float[] naiveUnpermute(float[] in, int hidden, byte[] map, float[] merging, int n, int numExperts) {
    int[] dst = naiveDst(map, n, numExperts);
    float[] out = new float[n * hidden];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < hidden; h++) {
        float acc = 0f;
        boolean any = false;
        for (int e = numExperts - 1; e >= 0; e--) {
          int r = dst[t * numExperts + e];
          if (r < 0) {
            continue;
          }
          any = true;
          float v = in[r * hidden + h];
          if (merging != null) {
            v = v * merging[t * numExperts + e];
          }
          acc = acc + v;
        }
        out[t * hidden + h] = any ? acc : 0f;
      }
    }
    return out;
  }

  /** Per-expert zero padding of an unpadded permuted tensor (TE's Fp8Padding reference). */
  static float[] naivePad(float[] permuted, int hidden, int[] counts, int align) {
    int total = 0;
    for (int c : counts) {
      total += (c + align - 1) / align * align;
    }
    float[] out = new float[total * hidden];
    int src = 0;
    int dst = 0;
    for (int c : counts) {
      System.arraycopy(permuted, src * hidden, out, dst * hidden, c * hidden);
      src += c;
      dst += (c + align - 1) / align * align;
    }
    return out;
  }

  /** TE-TEST generator: exactly numOut ones at random cells of the N x E grid (0..E experts per row). */
  static byte[] randomRoutingMap(Random rnd, int n, int numExperts, int numOut) {
    int cells = n * numExperts;
    int[] perm = new int[cells];
    for (int i = 0; i < cells; i++) {
      perm[i] = i;
    }
    byte[] map = new byte[cells];
    for (int i = 0; i < numOut; i++) {
      int j = i + rnd.nextInt(cells - i);
      int tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
      map[perm[i]] = 1;
    }
    return map;
  }

  static int[] columnSums(byte[] map, int n, int numExperts) {
    int[] c = new int[numExperts];
    for (int t = 0; t < n; t++) {
      for (int e = 0; e < numExperts; e++) {
        c[e] += map[t * numExperts + e];
      }
    }
    return c;
  }

  /** Random probs masked by the routing map, with a few exact zeros on routed slots. */
  static float[] maskedProbs(Random rnd, byte[] map) {
    float[] p = new float[map.length];
    for (int i = 0; i < map.length; i++) {
      if (map[i] == 1) {
        p[i] = rnd.nextInt(50) == 0 ? 0f : rnd.nextFloat();
      }
    }
    return p;
  }

  static Stream<Arguments> sweep() {
    List<Arguments> cases = new ArrayList<>();
    for (int n : new int[] {0, 1, 1223, 1583}) {
      for (int e : new int[] {1, 3, 7, 16, 64, 256}) {
        for (int k : new int[] {1, 2, 5, 8}) {
          cases.add(Arguments.of(n, e, k));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "N={0} E={1} topK={2}")
  @MethodSource("sweep")
  void sweepMatchesNaiveReferenceBitExact(int n, int numExperts, int topK) {
    Random rnd = new Random(17L * n + 5L * numExperts + topK);
    int hidden = 7; // the Triton path has no vector-width rule
    int numOut = Math.min(n * topK, n * numExperts);
    byte[] map = randomRoutingMap(rnd, n, numExperts, numOut);
    String tag = "N=" + n + " E=" + numExperts + " K=" + topK;
    int[] refMap = naiveRowIdMap(map, n, numExperts);
    assertArrayEquals(refMap, TeMaskPermute.makeRowIdMap(map, n, numExperts), tag + ": row_id_map");

    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    float[] probs = maskedProbs(rnd, map);

    TeMaskPermute.Permuted<float[]> plain = TeMaskPermute.moePermute(x, n, hidden, map, numExperts, numOut);
    assertArrayEquals(refMap, plain.rowIdMap(), tag);
    Tolerance.assertBitEqual(plain.output(),
        naivePermute(x, hidden, map, null, n, numExperts, new float[numOut * hidden]), tag + ": permuted");

    TeMaskPermute.PermutedWithProbs<short[]> wp =
        TeMaskPermute.moePermuteWithProbs(xb, n, hidden, probs, map, numExperts, numOut);
    assertShortsEqual(naivePermute(xb, hidden, map, probs, n, numExperts, new short[numOut * hidden]), wp.output(),
        tag + ": permuted bf16 with probs");
    Tolerance.assertBitEqual(wp.permutedProbs(), naivePermutedProbs(map, probs, n, numExperts),
        tag + ": permuted probs");

    // expert outputs: arbitrary rows; unpermute with merging probs against the naive order
    float[] expertOut = TeTestSupport.gaussian(rnd, numOut * hidden);
    Tolerance.assertBitEqual(
        TeMaskPermute.moeUnpermute(expertOut, numOut, hidden, refMap, numExperts, probs, n, null),
        naiveUnpermute(expertOut, hidden, map, probs, n, numExperts), tag + ": unpermute fp32");
    short[] expertOutB = TeTestSupport.bf16Tokens(rnd, numOut * hidden);
    float[] widened = new float[expertOutB.length];
    for (int i = 0; i < widened.length; i++) {
      widened[i] = f32(expertOutB[i]);
    }
    float[] refB = naiveUnpermute(widened, hidden, map, probs, n, numExperts);
    short[] expectedB = new short[refB.length];
    for (int i = 0; i < refB.length; i++) {
      expectedB[i] = bf16(refB[i]);
    }
    assertShortsEqual(expectedB,
        TeMaskPermute.moeUnpermute(expertOutB, numOut, hidden, refMap, numExperts, probs, n, null),
        tag + ": unpermute bf16");

    // padded variant (align 16) == permute_with_probs + per-expert zero padding; unpad == unpadded
    int[] counts = columnSums(map, n, numExperts);
    TeMaskPermute.PaddedPermuted<float[]> padded =
        TeMaskPermute.moePermuteAndPadWithProbs(x, n, hidden, probs, map, numExperts, counts, 16);
    float[] unpadded = naivePermute(x, hidden, map, probs, n, numExperts, new float[numOut * hidden]);
    Tolerance.assertBitEqual(padded.output(), naivePad(unpadded, hidden, counts, 16), tag + ": padded");
    Tolerance.assertBitEqual(padded.permutedProbs(), naivePad(naivePermutedProbs(map, probs, n, numExperts), 1,
        counts, 16), tag + ": padded probs");
    assertArrayEquals(refMap, padded.rowIdMap(), tag + ": padded row_id_map");
    int paddedRows = padded.permutedProbs().length;
    Tolerance.assertBitEqual(
        TeMaskPermute.moeUnpermute(padded.output(), paddedRows, hidden, padded.rowIdMap(), numExperts, probs, n,
            padded.padOffsets()),
        TeMaskPermute.moeUnpermute(unpadded, numOut, hidden, refMap, numExperts, probs, n, null),
        tag + ": unpad round trip");
  }

  @ParameterizedTest(name = "N={0} E={1} topK={2}")
  @MethodSource("sweep")
  void roundTripWithDyadicMergingProbsRestoresTokensExactly(int n, int numExperts, int topK) {
    // identity experts; merging probs of each routed token are multiples of 1/16 summing to 1;
    // tokens are multiples of 1/64: all arithmetic is exact, so the round trip is the identity.
    Random rnd = new Random(99L + 17L * n + 5L * numExperts + topK);
    int hidden = 5;
    int numOut = Math.min(n * topK, n * numExperts);
    byte[] map = randomRoutingMap(rnd, n, numExperts, numOut);
    float[] x = TeTestSupport.exactTokens(rnd, n * hidden);
    float[] merging = new float[n * numExperts];
    float[] expected = x.clone();
    for (int t = 0; t < n; t++) {
      List<Integer> routed = new ArrayList<>();
      for (int e = 0; e < numExperts; e++) {
        if (map[t * numExperts + e] == 1) {
          routed.add(e);
        }
      }
      if (routed.isEmpty()) {
        Arrays.fill(expected, t * hidden, (t + 1) * hidden, 0f);
      }
      int left = 16;
      for (int i = 0; i < routed.size(); i++) {
        int share = i == routed.size() - 1 ? left : rnd.nextInt(left + 1);
        left -= share;
        merging[t * numExperts + routed.get(i)] = share / 16f;
      }
    }
    TeMaskPermute.Permuted<float[]> p = TeMaskPermute.moePermute(x, n, hidden, map, numExperts, numOut);
    float[] back = TeMaskPermute.moeUnpermute(p.output(), numOut, hidden, p.rowIdMap(), numExperts, merging, n, null);
    Tolerance.assertBitEqual(back, expected, "round trip N=" + n + " E=" + numExperts + " K=" + topK);
  }

  @Test
  void bf16RoundTripWithinTolerance() {
    Random rnd = new Random(3);
    int n = 1583;
    int numExperts = 16;
    int hidden = 9;
    int numOut = n * 2;
    byte[] map = randomRoutingMap(rnd, n, numExperts, numOut);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    float[] merging = new float[n * numExperts];
    float[] expected = new float[n * hidden];
    for (int t = 0; t < n; t++) {
      int cnt = 0;
      for (int e = 0; e < numExperts; e++) {
        cnt += map[t * numExperts + e];
      }
      for (int e = 0; e < numExperts; e++) {
        merging[t * numExperts + e] = map[t * numExperts + e] == 1 ? 1f / cnt : 0f;
      }
      for (int h = 0; h < hidden && cnt > 0; h++) {
        expected[t * hidden + h] = f32(xb[t * hidden + h]);
      }
    }
    TeMaskPermute.Permuted<short[]> p = TeMaskPermute.moePermute(xb, n, hidden, map, numExperts, numOut);
    short[] back = TeMaskPermute.moeUnpermute(p.output(), numOut, hidden, p.rowIdMap(), numExperts, merging, n, null);
    float[] widened = new float[back.length];
    for (int i = 0; i < back.length; i++) {
      widened[i] = f32(back[i]);
    }
    Tolerance.BF16.assertClose(widened, expected, "bf16 mask-map round trip");
  }

  @Test
  void sameInputSameBits() {
    Random rnd = new Random(8);
    int n = 1223;
    int numExperts = 64;
    byte[] map = randomRoutingMap(rnd, n, numExperts, n * 8);
    float[] x = TeTestSupport.gaussian(rnd, n * 16);
    float[] probs = maskedProbs(rnd, map);
    TeMaskPermute.PermutedWithProbs<float[]> a = TeMaskPermute.moePermuteWithProbs(x, n, 16, probs, map, 64, n * 8);
    TeMaskPermute.PermutedWithProbs<float[]> b =
        TeMaskPermute.moePermuteWithProbs(x.clone(), n, 16, probs.clone(), map.clone(), 64, n * 8);
    assertArrayEquals(a.rowIdMap(), b.rowIdMap());
    Tolerance.assertBitEqual(a.output(), b.output(), "permuted");
    Tolerance.assertBitEqual(a.permutedProbs(), b.permutedProbs(), "permuted probs");
    Tolerance.assertBitEqual(TeMaskPermute.moeUnpermute(a.output(), n * 8, 16, a.rowIdMap(), 64, probs, n, null),
        TeMaskPermute.moeUnpermute(b.output(), n * 8, 16, b.rowIdMap(), 64, probs, n, null), "unpermuted");
  }

  @Test
  void emptyInput() {
    // TE test_permutation_mask_map_empty_input: N = 0, E = 8
    TeMaskPermute.PermutedWithProbs<short[]> r =
        TeMaskPermute.moePermuteWithProbs(new short[0], 0, 4096, new float[0], new byte[0], 8, 0);
    assertEquals(0, r.output().length);
    assertEquals(0, r.permutedProbs().length);
    assertEquals(0, r.rowIdMap().length);
    assertEquals(0, TeMaskPermute.moeUnpermute(new short[0], 0, 4096, new int[0], 8, null, 0, null).length);
    // tokens routed nowhere: num_out_tokens = 0 is accepted, every output row is +0
    TeMaskPermute.Permuted<float[]> none = TeMaskPermute.moePermute(tokens(2, 4), 2, 4, new byte[6], 3, 0);
    assertEquals(0, none.output().length);
    Tolerance.assertBitEqual(TeMaskPermute.moeUnpermute(new float[0], 0, 4, none.rowIdMap(), 3, null, 2, null),
        new float[8], "nothing routed");
  }

  // ---------------------------------------------------------------- argument checks

  @Test
  void rejectsBadArguments() {
    float[] x = tokens(5, 3);
    assertRejects(() -> TeMaskPermute.moePermute(x, 5, 3, EXAMPLE_MAP, 3, 6), "num_out_tokens = 6",
        "routes 7");
    assertRejects(() -> TeMaskPermute.moePermute(x, 5, 3, EXAMPLE_MAP, 3, 8), "num_out_tokens = 8");
    byte[] bad = EXAMPLE_MAP.clone();
    bad[7] = 2;
    assertRejects(() -> TeMaskPermute.makeRowIdMap(bad, 5, 3), "routing_map[2][1] = 2", "expected 0");
    assertRejects(() -> TeMaskPermute.makeRowIdMap(EXAMPLE_MAP, 5, 4), "routing_map", "expected 20", "got 15");
    assertRejects(() -> TeMaskPermute.makeRowIdMap(EXAMPLE_MAP, 5, 0), "num_experts must be > 0, got 0");
    assertRejects(() -> TeMaskPermute.moePermute(new float[14], 5, 3, EXAMPLE_MAP, 3, 7), "inp", "expected 15",
        "got 14");
    assertRejects(() -> TeMaskPermute.moePermuteWithProbs(x, 5, 3, new float[10], EXAMPLE_MAP, 3, 7), "probs",
        "expected 15", "got 10");
    assertThrows(NullPointerException.class,
        () -> TeMaskPermute.moePermuteWithProbs(x, 5, 3, null, EXAMPLE_MAP, 3, 7));
    assertRejects(() -> TeMaskPermute.moePermuteAndPadWithProbs(x, 5, 3, new float[15], EXAMPLE_MAP, 3,
        new int[] {3, 1, 2}, 4), "tokens_per_expert[1] = 1", "routes 2 tokens to expert 1");
    assertRejects(() -> TeMaskPermute.moePermuteAndPadWithProbs(x, 5, 3, new float[15], EXAMPLE_MAP, 3,
        new int[] {3, 2}, 4), "tokens_per_expert", "expected 3", "got 2");
    assertRejects(() -> TeMaskPermute.moePermuteAndPadWithProbs(x, 5, 3, new float[15], EXAMPLE_MAP, 3,
        new int[] {3, 2, 2}, 0), "align_size must be > 0, got 0");

    float[] p = new float[7 * 3];
    int[] map = EXAMPLE_ROW_ID_MAP;
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, map, 3, null, 4, null), "row_id_map", "expected 28",
        "got 35", "restore_shape");
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 6, 3, map, 3, null, 5, null), "inp", "expected 18");
    assertRejects(() -> TeMaskPermute.moeUnpermute(new float[18], 6, 3, map, 3, null, 5, null),
        "row_id_map[2][0] = 6", "[0, 6)");
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, map, 3, new float[14], 5, null), "merging_probs",
        "expected 15", "got 14");
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, map, 3, null, 5, new int[] {0, 1}), "pad_offsets",
        "expected 3", "got 2");
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, map, 3, null, 5, new int[] {0, -1, 0}),
        "pad_offsets[1] must be >= 0, got -1");
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, map, 3, null, 5, new int[] {0, 4, 0}),
        "row_id_map[0][0] = 3", "pad_offsets[1] = 7", "[0, 7)");
    int[] tooMany = map.clone();
    tooMany[6] = 4;
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, tooMany, 3, null, 5, null),
        "row_id_map[0][6] (n_routed) = 4", "[0, 3]");
    int[] badExpert = map.clone();
    badExpert[3] = 3;
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, badExpert, 3, null, 5, null),
        "row_id_map[0][3] (expert) = 3");
    int[] ascending = map.clone();
    ascending[3] = 0;
    ascending[4] = 1;
    assertRejects(() -> TeMaskPermute.moeUnpermute(p, 7, 3, ascending, 3, null, 5, null), "row_id_map[0]",
        "not strictly descending");
  }
}
