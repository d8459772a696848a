package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.moespark.ops.TeTestSupport.assertRejects;
import static org.moespark.ops.TeTestSupport.assertShortsEqual;
import static org.moespark.ops.TeTestSupport.bf16;
import static org.moespark.ops.TeTestSupport.f32;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.moespark.testing.Tolerance;

/** TE index-map permute / unpermute (spec moe-ops-semantics §7, §10, §15). */
class TePermuteTest {

  // ---------------------------------------------------------------- spec worked example §7.2b

  private static final int[] EXAMPLE_INDICES = {1, 0, 0, 2, 1, 2};

  /** Token t's row is filled with t + 1 + h/8 so every row is distinguishable. */
  private static float[] exampleTokens(int n, int hidden) {
    float[] x = new float[n * hidden];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < hidden; h++) {
        x[t * hidden + h] = t + 1 + h / 8f;
      }
    }
    return x;
  }

  private static float[] rows(float[] tokens, int hidden, int... order) {
    float[] out = new float[order.length * hidden];
    for (int i = 0; i < order.length; i++) {
      System.arraycopy(tokens, order[i] * hidden, out, i * hidden, hidden);
    }
    return out;
  }

  @Test
  void workedExampleRowIdMapAndRows() {
    float[] x = exampleTokens(3, 4);
    TePermute.Result<float[]> r = TePermute.moePermute(x, 3, 4, EXAMPLE_INDICES, 2, 0);
    assertArrayEquals(new int[] {2, 1, 3, 0, 4, 5}, r.rowIdMap());
    assertEquals(6, r.numOutTokens());
    Tolerance.assertBitEqual(r.permuted(), rows(x, 4, 0, 1, 0, 2, 1, 2), "permuted rows [x0,x1,x0,x2,x1,x2]");
  }

  @Test
  void workedExampleDroppingKeepsTheFirstSortedEntries() {
    float[] x = exampleTokens(3, 4);
    TePermute.Result<float[]> r = TePermute.moePermute(x, 3, 4, EXAMPLE_INDICES, 2, 4);
    assertArrayEquals(new int[] {2, 1, 3, 0, -1, -1}, r.rowIdMap());
    Tolerance.assertBitEqual(r.permuted(), rows(x, 4, 0, 1, 0, 2), "permuted rows after dropping expert 2");
    // unpermute of tokens 1 and 2 only sees their k = 0 rows; token 0 sums both of its rows.
    float[] out = TePermute.moeUnpermute(r.permuted(), 4, 4, r.rowIdMap(), null, 3, 2);
    float[] expected = new float[12];
    for (int h = 0; h < 4; h++) {
      expected[h] = 2 * x[h];
      expected[4 + h] = x[4 + h];
      expected[8 + h] = x[8 + h];
    }
    Tolerance.assertBitEqual(out, expected, "unpermute after dropping");
  }

  @Test
  void negativeIdsSortToTheTailAsUnsignedKeys() {
    // keys as uint32: 0 < 3 < 0x80000000 (MIN_VALUE) < 0xFFFFFFFE (-2) < 0xFFFFFFFF (-1)
    int[] indices = {-1, 3, Integer.MIN_VALUE, 0, -2, -1};
    int[] map = TePermute.makeRowIdMap(indices, 3, 2, 0);
    // sorted positions: p3 (0), p1 (3), p2 (MIN), p4 (-2), p0 (-1), p5 (-1)
    // map[k*3 + t] for p = t*2 + k: p0->4, p1->1, p2->2, p3->0, p4->3, p5->5
    assertArrayEquals(new int[] {4, 2, 3, 1, 0, 5}, map);
    // keeping only the 2 valid slots drops every sentinel
    assertArrayEquals(new int[] {-1, -1, -1, 1, 0, -1}, TePermute.makeRowIdMap(indices, 3, 2, 2));
  }

  @Test
  void tokenRoutedNowhereUnpermutesToPositiveZero() {
    int[] indices = {0, -1, -1, -1};
    float[] x = {-1.5f, -2.5f, -3.5f, -4.5f, 7, 7, 7, 7};
    TePermute.Result<float[]> r = TePermute.moePermute(x, 2, 4, indices, 2, 1);
    float[] out = TePermute.moeUnpermute(r.permuted(), 1, 4, r.rowIdMap(), new float[] {1, 1, 1, 1}, 2, 2);
    Tolerance.assertBitEqual(out, new float[] {-1.5f, -2.5f, -3.5f, -4.5f, 0, 0, 0, 0}, "unrouted token");
  }

  // ---------------------------------------------------------------- hand-computed accumulation cases

  @Test
  void fp32UnpermuteSumsInSlotOrder() {
    // slots hold 2^-24, 2^-24, 1: in slot order 2^-24 + 2^-24 = 2^-23, + 1 = 1 + 2^-23 (exact).
    // The reverse order would give 1 (1 + 2^-24 ties to even).
    float tiny = Math.scalb(1f, -24);
    int[] map = {0, 1, 2};
    float[] out = TePermute.moeUnpermute(new float[] {tiny, tiny, tiny, tiny, tiny, tiny, tiny, tiny, 1, 1, 1, 1},
        3, 4, map, null, 1, 3);
    float expected = Float.intBitsToFloat(0x3F800001);
    Tolerance.assertBitEqual(out, new float[] {expected, expected, expected, expected}, "slot-order sum");
  }

  @Test
  void bf16UnpermuteInputDtypeRoundsEveryStep() {
    short one = (short) 0x3F80;
    short eighth = (short) 0x3B80; // 2^-8
    short[] inp = new short[24];
    for (int h = 0; h < 8; h++) {
      inp[h] = one;
      inp[8 + h] = eighth;
      inp[16 + h] = eighth;
    }
    int[] map = {0, 1, 2};
    // bf16 steps: 1 + 2^-8 ties to 1, twice -> 1.0 (0x3F80); fp32: 1 + 2^-7 -> 0x3F81.
    short[] upstream = TePermute.moeUnpermute(inp, 3, 8, map, null, 1, 3);
    short[] accurate = TePermute.moeUnpermute(inp, 3, 8, map, null, 1, 3, TePermute.Accumulation.FP32);
    short[] expUp = new short[8];
    short[] expAcc = new short[8];
    Arrays.fill(expUp, (short) 0x3F80);
    Arrays.fill(expAcc, (short) 0x3F81);
    assertShortsEqual(expUp, upstream, "INPUT_DTYPE accumulation");
    assertShortsEqual(expAcc, accurate, "FP32 accumulation");
  }

  @Test
  void bf16UnpermuteInputDtypeRoundsTheProbFirst() {
    // x = 3.0, prob = 1 + 2^-8 + 2^-10. bf16(prob) = 1 + 2^-7; 3 * (1 + 2^-7) = 3.0234375 ties -> 0x4042.
    // fp32: 3 * 1.0048828125 = 3.0146484375 -> 0x4041.
    short[] inp = new short[8];
    Arrays.fill(inp, (short) 0x4040);
    float[] probs = {1.0048828125f};
    short[] upstream = TePermute.moeUnpermute(inp, 1, 8, new int[] {0}, probs, 1, 1);
    short[] accurate = TePermute.moeUnpermute(inp, 1, 8, new int[] {0}, probs, 1, 1, TePermute.Accumulation.FP32);
    assertEquals(0x4042, upstream[0] & 0xFFFF);
    assertEquals(0x4041, accurate[0] & 0xFFFF);
    assertEquals(0x4042, upstream[7] & 0xFFFF);
  }

  @Test
  void noProbsOverloadIsTePyTopK1Layout() {
    // TE-PY without probs: topK = 1, num_tokens = row_id_map.length, output row i = inp[map[i]] or 0.
    float[] x = exampleTokens(3, 4);
    TePermute.Result<float[]> r = TePermute.moePermute(x, 3, 4, EXAMPLE_INDICES, 2, 4);
    float[] out = TePermute.moeUnpermute(r.permuted(), 4, 4, r.rowIdMap());
    float[] expected = new float[6 * 4];
    System.arraycopy(rows(x, 4, 0, 1, 2, 0), 0, expected, 0, 16); // k = 0 rows of tokens 0,1,2 then k = 1 of t0
    Tolerance.assertBitEqual(out, expected, "k-major no-probs output");
    short[] xb = new short[3 * 8];
    for (int i = 0; i < xb.length; i++) {
      xb[i] = (short) (0x3F80 + i);
    }
    TePermute.Result<short[]> rb = TePermute.moePermute(xb, 3, 8, new int[] {2, 0, 1}, 1, 0);
    short[] back = TePermute.moeUnpermute(rb.permuted(), 3, 8, rb.rowIdMap());
    assertShortsEqual(xb, back, "topK = 1 round trip is the identity");
  }

  // ---------------------------------------------------------------- independent naive references

  /** PyTorch reference of TE-TEST: stable argsort of the flat ids as unsigned keys. */
  static int[] naiveSortedPositions(int[] indices) {
    List<Integer> pos = new ArrayList<>();
    for (int p = 0; p < indices.length; p++) {
      pos.add(p);
    }
    pos.sort((a, b) -> Integer.compareUnsigned(indices[a], indices[b])); // List.sort is stable
    return pos.stream().mapToInt(Integer::intValue).toArray();
  }

  static int[] naiveRowIdMap(int[] indices, int n, int topK, int numOut) {
    int[] sorted = naiveSortedPositions(indices);
    int[] map = new int[indices.length];
    for (int i = 0; i < sorted.length; i++) {
      int p = sorted[i];
      map[(p % topK) * n + p / topK] = i < numOut ? i : -1;
    }
    return map;
  }

  /** {@code tokens[sorted[:num_out] // topK]}. */
  static <T> T naivePermuted(T tokens, int hidden, int[] indices, int topK, int numOut, T out) {
    int[] sorted = naiveSortedPositions(indices);
    for (int i = 0; i < numOut; i++) {
      System.arraycopy(tokens, (sorted[i] / topK) * hidden, out, i * hidden, hidden);
    }
    return out;
  }

  /** Spec §7.3 pseudo-code, fp32 compute. */
  static float[] naiveUnpermuteFp32(float[] in, int hidden, int[] map, float[] probs, int n, int topK) {
    float[] out = new float[n * hidden];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < hidden; h++) {
        float acc = 0f;
        if (map[t] != -1) {
          acc = in[map[t] * hidden + h];
          if (probs != null) {
            acc = acc * probs[t * topK];
          }
        }
        for (int k = 1; k < topK; k++) {
          int r = map[k * n + t];
          if (r == -1) {
            continue;
          }
          float v = in[r * hidden + h];
          if (probs != null) {
            v = v * probs[t * topK + k];
          }
          acc = acc + v;
        }
        out[t * hidden + h] = acc;
      }
    }
    return out;
  }

  /** Spec §7.3 with TC = bf16: prob rounded to bf16, every product and sum rounded to bf16. */
  static short[] naiveUnpermuteBf16(short[] in, int hidden, int[] map, float[] probs, int n, int topK) {
    short[] out = new short[n * hidden];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < hidden; h++) {
        short acc = 0;
        if (map[t] != -1) {
          acc = in[map[t] * hidden + h];
          if (probs != null) {
            acc = bf16(f32(acc) * f32(bf16(probs[t * topK])));
          }
        }
        for (int k = 1; k < topK; k++) {
          int r = map[k * n + t];
          if (r == -1) {
            continue;
          }
          short v = in[r * hidden + h];
          if (probs != null) {
            v = bf16(f32(v) * f32(bf16(probs[t * topK + k])));
          }
          acc = bf16(f32(acc) + f32(v));
        }
        out[t * hidden + h] = acc;
      }
    }
    return out;
  }

  /**
   * Routing with distinct experts per token; when topK > E the surplus slots are -1. About 1 in 8
   * slots is turned into a sentinel (-1, sometimes -2 or MIN_VALUE) anywhere in the row, and about 1 in
   * 16 tokens is routed nowhere.
   */
  static int[] randomIndices(Random rnd, int n, int numExperts, int topK) {
    int[] idx = new int[n * topK];
    int[] perm = new int[numExperts];
    for (int t = 0; t < n; t++) {
      for (int e = 0; e < numExperts; e++) {
        perm[e] = e;
      }
      for (int k = 0; k < topK; k++) {
        int v;
        if (k < numExperts) {
          int j = k + rnd.nextInt(numExperts - k);
          int tmp = perm[k];
          perm[k] = perm[j];
          perm[j] = tmp;
          v = perm[k];
        } else {
          v = -1;
        }
        if (rnd.nextInt(8) == 0) {
          int s = rnd.nextInt(10);
          v = s == 0 ? -2 : s == 1 ? Integer.MIN_VALUE : -1;
        }
        idx[t * topK + k] = v;
      }
      if (rnd.nextInt(16) == 0) {
        Arrays.fill(idx, t * topK, (t + 1) * topK, -1);
      }
    }
    return idx;
  }

  static int countValid(int[] indices) {
    int c = 0;
    for (int v : indices) {
      c += v >= 0 ? 1 : 0;
    }
    return c;
  }

  /** Probabilities of the valid slots of each token: dyadic (k/16) values summing to exactly 1. */
  static float[] dyadicProbs(Random rnd, int[] indices, int n, int topK) {
    float[] p = new float[indices.length];
    for (int t = 0; t < n; t++) {
      List<Integer> valid = new ArrayList<>();
      for (int k = 0; k < topK; k++) {
        if (indices[t * topK + k] >= 0) {
          valid.add(k);
        }
      }
      int left = 16;
      for (int i = 0; i < valid.size(); i++) {
        int share = i == valid.size() - 1 ? left : rnd.nextInt(left + 1);
        left -= share;
        p[t * topK + valid.get(i)] = share / 16f;
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
    Random rnd = new Random(31L * n + 7L * numExperts + topK);
    int hidden = 8;
    int[] indices = randomIndices(rnd, n, numExperts, topK);
    int expanded = n * topK;
    int valid = countValid(indices);
    int[] numOuts = {0, valid, Math.min(2039, expanded), expanded == 0 ? 0 : 1 + rnd.nextInt(expanded)};
    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    float[] probs = TeTestSupport.gaussian(rnd, expanded);
    for (int numOut : numOuts) {
      int resolved = numOut == 0 ? expanded : numOut;
      String tag = "N=" + n + " E=" + numExperts + " K=" + topK + " num_out=" + numOut;
      int[] refMap = naiveRowIdMap(indices, n, topK, resolved);

      TePermute.Result<float[]> r = TePermute.moePermute(x, n, hidden, indices, topK, numOut);
      assertArrayEquals(refMap, r.rowIdMap(), tag + ": row_id_map");
      assertEquals(resolved, r.numOutTokens(), tag);
      Tolerance.assertBitEqual(r.permuted(),
          naivePermuted(x, hidden, indices, topK, resolved, new float[resolved * hidden]), tag + ": permuted fp32");

      TePermute.Result<short[]> rb = TePermute.moePermute(xb, n, hidden, indices, topK, numOut);
      assertArrayEquals(refMap, rb.rowIdMap(), tag + ": row_id_map (bf16)");
      assertShortsEqual(naivePermuted(xb, hidden, indices, topK, resolved, new short[resolved * hidden]),
          rb.permuted(), tag + ": permuted bf16");

      Tolerance.assertBitEqual(TePermute.moeUnpermute(r.permuted(), resolved, hidden, r.rowIdMap(), probs, n, topK),
          naiveUnpermuteFp32(r.permuted(), hidden, r.rowIdMap(), probs, n, topK), tag + ": unpermute fp32");
      assertShortsEqual(naiveUnpermuteBf16(rb.permuted(), hidden, rb.rowIdMap(), probs, n, topK),
          TePermute.moeUnpermute(rb.permuted(), resolved, hidden, rb.rowIdMap(), probs, n, topK),
          tag + ": unpermute bf16 (input dtype)");
    }
  }

  @ParameterizedTest(name = "N={0} E={1} topK={2}")
  @MethodSource("sweep")
  void roundTripWithDyadicProbsRestoresTokensExactly(int n, int numExperts, int topK) {
    // Expert = identity, probs of each token's valid slots sum to 1 and are multiples of 1/16, tokens
    // are multiples of 1/64: every product and partial sum is exact, so unpermute(permute(x)) == x for
    // tokens with a valid slot and +0 for tokens routed nowhere. num_out = #valid drops the sentinels.
    Random rnd = new Random(1000L + 31L * n + 7L * numExperts + topK);
    int hidden = 4;
    int[] indices = randomIndices(rnd, n, numExperts, topK);
    float[] x = TeTestSupport.exactTokens(rnd, n * hidden);
    float[] probs = dyadicProbs(rnd, indices, n, topK);
    int valid = countValid(indices);
    if (valid == 0) {
      // nothing to keep: num_out_tokens = 0 means "keep every slot", sentinels included (upstream)
      assertEquals(n * topK, TePermute.moePermute(x, n, hidden, indices, topK, 0).numOutTokens());
      return;
    }
    TePermute.Result<float[]> r = TePermute.moePermute(x, n, hidden, indices, topK, valid);
    float[] back = TePermute.moeUnpermute(r.permuted(), valid, hidden, r.rowIdMap(), probs, n, topK);
    float[] expected = x.clone();
    for (int t = 0; t < n; t++) {
      if (countValid(Arrays.copyOfRange(indices, t * topK, (t + 1) * topK)) == 0) {
        Arrays.fill(expected, t * hidden, (t + 1) * hidden, 0f);
      }
    }
    Tolerance.assertBitEqual(back, expected, "round trip N=" + n + " E=" + numExperts + " K=" + topK);
  }

  @Test
  void bf16RoundTripWithinTolerance() {
    Random rnd = new Random(5);
    int n = 1223;
    int topK = 5;
    int hidden = 16;
    int[] indices = randomIndices(rnd, n, 7, topK);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    float[] probs = dyadicProbs(rnd, indices, n, topK);
    int valid = countValid(indices);
    TePermute.Result<short[]> r = TePermute.moePermute(xb, n, hidden, indices, topK, valid);
    float[] expected = new float[n * hidden];
    for (int t = 0; t < n; t++) {
      boolean routed = countValid(Arrays.copyOfRange(indices, t * topK, (t + 1) * topK)) > 0;
      for (int h = 0; h < hidden; h++) {
        expected[t * hidden + h] = routed ? f32(xb[t * hidden + h]) : 0f;
      }
    }
    for (TePermute.Accumulation acc : TePermute.Accumulation.values()) {
      short[] back = TePermute.moeUnpermute(r.permuted(), valid, hidden, r.rowIdMap(), probs, n, topK, acc);
      float[] widened = new float[back.length];
      for (int i = 0; i < back.length; i++) {
        widened[i] = f32(back[i]);
      }
      Tolerance.BF16.assertClose(widened, expected, "bf16 round trip " + acc);
    }
  }

  @Test
  void sameInputSameBits() {
    Random rnd = new Random(11);
    int n = 1583;
    int topK = 8;
    int[] indices = randomIndices(rnd, n, 64, topK);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * 8);
    float[] probs = TeTestSupport.gaussian(rnd, n * topK);
    TePermute.Result<short[]> a = TePermute.moePermute(xb, n, 8, indices, topK, 2039);
    TePermute.Result<short[]> b = TePermute.moePermute(xb.clone(), n, 8, indices.clone(), topK, 2039);
    assertArrayEquals(a.rowIdMap(), b.rowIdMap());
    assertShortsEqual(a.permuted(), b.permuted(), "permuted");
    assertShortsEqual(TePermute.moeUnpermute(a.permuted(), 2039, 8, a.rowIdMap(), probs, n, topK),
        TePermute.moeUnpermute(b.permuted(), 2039, 8, b.rowIdMap(), probs.clone(), n, topK), "unpermuted");
  }

  @Test
  void emptyInputs() {
    TePermute.Result<float[]> r = TePermute.moePermute(new float[0], 0, 4, new int[0], 2, 0);
    assertEquals(0, r.permuted().length);
    assertEquals(0, r.rowIdMap().length);
    assertEquals(0, r.numOutTokens());
    // hidden = 0 with tokens: the map is still well defined, the permuted tensor is [num_out, 0]
    TePermute.Result<float[]> z = TePermute.moePermute(new float[0], 3, 0, EXAMPLE_INDICES, 2, 0);
    assertArrayEquals(new int[] {2, 1, 3, 0, 4, 5}, z.rowIdMap());
    assertEquals(0, z.permuted().length);
    // and hidden need not be a vector multiple when there is no data
    assertEquals(0, TePermute.moePermute(new short[0], 0, 3, new int[0], 1, 0).permuted().length);
  }

  // ---------------------------------------------------------------- argument checks

  @Test
  void rejectsBadArguments() {
    float[] x = exampleTokens(3, 4);
    assertRejects(() -> TePermute.moePermute(x, 3, 4, EXAMPLE_INDICES, 2, 7), "num_out_tokens = 7", "[0, 6]");
    assertRejects(() -> TePermute.moePermute(x, 3, 4, EXAMPLE_INDICES, 2, -1), "num_out_tokens = -1");
    assertRejects(() -> TePermute.moePermute(x, 3, 4, new int[] {1, 0, 0}, 2, 0), "indices", "expected 6",
        "got 3");
    assertRejects(() -> TePermute.moePermute(x, 3, 4, new int[] {1, 1, 0, 2, 1, 2}, 2, 0), "token 0",
        "expert 1 twice");
    int[] wide = new int[3 * 20];
    Arrays.fill(wide, -1);
    wide[2 * 20 + 5] = 9;
    wide[2 * 20 + 17] = 9;
    assertRejects(() -> TePermute.makeRowIdMap(wide, 3, 20, 0), "token 2", "expert 9 twice", "slots 5 and 17");
    assertRejects(() -> TePermute.moePermute(new float[11], 3, 4, EXAMPLE_INDICES, 2, 0), "inp", "expected 12",
        "got 11");
    assertRejects(() -> TePermute.moePermute(new float[18], 3, 6, EXAMPLE_INDICES, 2, 0), "hidden = 6",
        "multiple of 4");
    assertRejects(() -> TePermute.moePermute(new short[12], 3, 4, EXAMPLE_INDICES, 2, 0), "hidden = 4",
        "multiple of 8");
    assertRejects(() -> TePermute.moePermute(x, 3, 4, new int[0], 0, 0), "topK must be > 0, got 0");
    assertRejects(() -> TePermute.moePermute(x, -3, 4, EXAMPLE_INDICES, 2, 0), "num_tokens must be >= 0, got -3");
    assertRejects(() -> TePermute.makeRowIdMap(new int[0], 1 << 20, 1 << 12, 0), "num_tokens * topK = 4294967296",
        "overflows int32");
    assertThrows(NullPointerException.class, () -> TePermute.moePermute((float[]) null, 3, 4, EXAMPLE_INDICES, 2, 0));

    float[] p = new float[16];
    assertRejects(() -> TePermute.moeUnpermute(p, 4, 4, new int[] {0, 1, 4, 3, -1, 2}, null, 3, 2),
        "row_id_map[2]", "= 4", "[0, 4)");
    assertRejects(() -> TePermute.moeUnpermute(p, 4, 4, new int[] {0, 1, -2, 3, -1, 2}, null, 3, 2),
        "row_id_map[2]", "= -2");
    assertRejects(() -> TePermute.moeUnpermute(p, 4, 4, new int[] {0, 1, 2, 3, -1}, null, 3, 2), "row_id_map",
        "expected 6", "got 5");
    assertRejects(() -> TePermute.moeUnpermute(p, 4, 4, new int[] {0, 1, 2, 3, -1, 2}, new float[5], 3, 2),
        "probs", "expected 6", "got 5");
    assertRejects(() -> TePermute.moeUnpermute(p, 5, 4, new int[] {0, 1, 2, 3, -1, 2}, null, 3, 2), "inp",
        "expected 20", "got 16");
    assertThrows(NullPointerException.class,
        () -> TePermute.moeUnpermute(new short[16], 2, 8, new int[] {0, 1}, null, 2, 1, null));
  }
}
