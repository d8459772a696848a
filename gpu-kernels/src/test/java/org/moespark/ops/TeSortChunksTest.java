package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.moespark.ops.TeTestSupport.assertRejects;
import static org.moespark.ops.TeTestSupport.assertShortsEqual;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.moespark.testing.Tolerance;

/** TE moe_sort_chunks_by_index[_with_probs] (spec moe-ops-semantics §9, §10). */
class TeSortChunksTest {

  @Test
  void handExample() {
    // chunks c0 = rows 0-1, c1 = row 2, c2 = rows 3-5; row 6 lies beyond sum(split_sizes) and stays.
    // sorted_index [2, 0, 1] -> out = rows 3,4,5 | 0,1 | 2 | 6
    int[] split = {2, 1, 3};
    int[] order = {2, 0, 1};
    assertArrayEquals(new int[] {3, 4, 5, 0, 1, 2, 6}, TeSortChunks.makeChunkSortMap(split, order, 7));
    float[] x = new float[7 * 2];
    float[] probs = new float[7];
    for (int r = 0; r < 7; r++) {
      x[2 * r] = r;
      x[2 * r + 1] = -r - 0.5f;
      probs[r] = r / 8f;
    }
    TeSortChunks.Sorted<float[]> s = TeSortChunks.moeSortChunksByIndexWithProbs(x, 7, 2, probs, split, order);
    Tolerance.assertBitEqual(s.output(), new float[] {3, -3.5f, 4, -4.5f, 5, -5.5f, 0, -0.5f, 1, -1.5f, 2, -2.5f,
        6, -6.5f}, "sorted rows");
    Tolerance.assertBitEqual(s.permutedProbs(), new float[] {3 / 8f, 4 / 8f, 5 / 8f, 0, 1 / 8f, 2 / 8f, 6 / 8f},
        "sorted probs");
  }

  @Test
  void emptyChunksAndNoChunks() {
    assertArrayEquals(new int[] {0, 1, 2}, TeSortChunks.makeChunkSortMap(new int[0], new int[0], 3));
    assertArrayEquals(new int[] {1, 0, 2}, TeSortChunks.makeChunkSortMap(new int[] {0, 1, 0, 1}, new int[] {3, 2, 1, 0}, 3));
    assertArrayEquals(new int[0], TeSortChunks.makeChunkSortMap(new int[] {0, 0}, new int[] {1, 0}, 0));
  }

  /** cat(chunk[sorted_index[0]], chunk[sorted_index[1]], ...) + the rows beyond sum(split_sizes). */
  static <T> T naiveSort(T x, int n, int hidden, int[] split, int[] order, T out) {
    int[] start = new int[split.length];
    int total = 0;
    for (int c = 0; c < split.length; c++) {
      start[c] = total;
      total += split[c];
    }
    int dst = 0;
    for (int c : order) {
      System.arraycopy(x, start[c] * hidden, out, dst * hidden, split[c] * hidden);
      dst += split[c];
    }
    System.arraycopy(x, total * hidden, out, total * hidden, (n - total) * hidden);
    return out;
  }

  static Stream<Arguments> tpCases() {
    List<Arguments> cases = new ArrayList<>();
    for (int n : new int[] {0, 1223, 1583}) {
      for (int e : new int[] {1, 7, 16}) {
        for (int tp : new int[] {1, 2, 4, 8}) {
          cases.add(Arguments.of(n, e, tp));
        }
      }
    }
    return cases.stream();
  }

  /** Random split sizes over E * tp chunks (some empty) with sum <= n. */
  static int[] randomSplits(Random rnd, int n, int chunks) {
    int[] split = new int[chunks];
    int left = n - (n > 0 ? rnd.nextInt(Math.min(n, 5) + 1) : 0); // sometimes leave a tail of rows
    for (int c = 0; c < chunks - 1; c++) {
      split[c] = rnd.nextInt(4) == 0 ? 0 : rnd.nextInt(left / 2 + 1);
      left -= split[c];
    }
    if (chunks > 0) {
      split[chunks - 1] = left;
    }
    return split;
  }

  @ParameterizedTest(name = "N={0} E={1} tp={2}")
  @MethodSource("tpCases")
  void tpRegroupingMatchesNaiveAndInverts(int n, int numExperts, int tp) {
    Random rnd = new Random(13L * n + 3L * numExperts + tp);
    int chunks = numExperts * tp;
    int hidden = 5;
    int[] split = randomSplits(rnd, n, chunks);
    // TE-TEST: sorted_idxs = arange(E * tp).reshape(tp, E).T.ravel()
    int[] order = new int[chunks];
    for (int q = 0; q < chunks; q++) {
      order[q] = (q % tp) * numExperts + q / tp;
    }
    int[] inverse = new int[chunks];
    int[] sortedSplit = new int[chunks];
    for (int q = 0; q < chunks; q++) {
      inverse[order[q]] = q;
      sortedSplit[q] = split[order[q]];
    }
    String tag = "N=" + n + " E=" + numExperts + " tp=" + tp;
    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    float[] probs = TeTestSupport.gaussian(rnd, n);
    TeSortChunks.Sorted<float[]> s = TeSortChunks.moeSortChunksByIndexWithProbs(x, n, hidden, probs, split, order);
    Tolerance.assertBitEqual(s.output(), naiveSort(x, n, hidden, split, order, new float[n * hidden]), tag);
    Tolerance.assertBitEqual(s.permutedProbs(), naiveSort(probs, n, 1, split, order, new float[n]), tag + " probs");
    TeSortChunks.Sorted<float[]> back =
        TeSortChunks.moeSortChunksByIndexWithProbs(s.output(), n, hidden, s.permutedProbs(), sortedSplit, inverse);
    Tolerance.assertBitEqual(back.output(), x, tag + ": inverse sort restores the rows");
    Tolerance.assertBitEqual(back.permutedProbs(), probs, tag + ": inverse sort restores the probs");

    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    short[] sb = TeSortChunks.moeSortChunksByIndex(xb, n, hidden, split, order);
    assertShortsEqual(naiveSort(xb, n, hidden, split, order, new short[n * hidden]), sb, tag + " bf16");
    assertShortsEqual(xb, TeSortChunks.moeSortChunksByIndex(sb, n, hidden, sortedSplit, inverse), tag + " bf16 inverse");
  }

  /** The TE test runs tp in {1, 2}. */
  static Stream<Arguments> alongsideCases() {
    return tpCases().filter(a -> (int) a.get()[2] <= 2);
  }

  @ParameterizedTest(name = "N={0} E={1} tp={2}")
  @MethodSource("alongsideCases")
  void maskMapAlongsideProbs(int n, int numExperts, int tp) {
    // TE test_permutation_mask_map_alongside_probs: permute_with_probs -> chunk sort -> scale rows by
    // the permuted probs -> inverse chunk sort -> unpermute (no merging probs). The result must be the
    // per-token sum over routed experts, in descending expert order, of x * prob.
    Random rnd = new Random(77L * n + numExperts + tp);
    int hidden = 6;
    int numOut = Math.min(2 * n, n * numExperts);
    byte[] map = TeMaskPermuteTest.randomRoutingMap(rnd, n, numExperts, numOut);
    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    float[] probs = TeMaskPermuteTest.maskedProbs(rnd, map);
    TeMaskPermute.PermutedWithProbs<float[]> p =
        TeMaskPermute.moePermuteWithProbs(x, n, hidden, probs, map, numExperts, numOut);
    // each expert's segment is split into tp chunks (the tp ranks' shares), regrouped rank-major
    int[] counts = TeMaskPermuteTest.columnSums(map, n, numExperts);
    int chunks = numExperts * tp;
    int[] split = new int[chunks];
    for (int e = 0; e < numExperts; e++) {
      int first = counts[e] / tp;
      for (int r = 0; r < tp; r++) {
        split[e * tp + r] = r == tp - 1 ? counts[e] - first * (tp - 1) : first;
      }
    }
    int[] order = new int[chunks];
    for (int q = 0; q < chunks; q++) {
      order[q] = (q % numExperts) * tp + q / numExperts;
    }
    int[] inverse = new int[chunks];
    int[] sortedSplit = new int[chunks];
    for (int q = 0; q < chunks; q++) {
      inverse[order[q]] = q;
      sortedSplit[q] = split[order[q]];
    }
    TeSortChunks.Sorted<float[]> s =
        TeSortChunks.moeSortChunksByIndexWithProbs(p.output(), numOut, hidden, p.permutedProbs(), split, order);
    float[] scaled = s.output().clone();
    for (int r = 0; r < numOut; r++) {
      for (int h = 0; h < hidden; h++) {
        scaled[r * hidden + h] = scaled[r * hidden + h] * s.permutedProbs()[r];
      }
    }
    float[] unsorted = TeSortChunks.moeSortChunksByIndex(scaled, numOut, hidden, sortedSplit, inverse);
    float[] out = TeMaskPermute.moeUnpermute(unsorted, numOut, hidden, p.rowIdMap(), numExperts, null, n, null);
    float[] expected = new float[n * hidden];
    for (int t = 0; t < n; t++) {
      for (int h = 0; h < hidden; h++) {
        float acc = 0f;
        for (int e = numExperts - 1; e >= 0; e--) {
          if (map[t * numExperts + e] == 1) {
            float pe = probs[t * numExperts + e];
            acc = acc + (pe == 0f ? 0f : x[t * hidden + h]) * pe;
          }
        }
        expected[t * hidden + h] = acc;
      }
    }
    Tolerance.assertBitEqual(out, expected, "alongside probs N=" + n + " E=" + numExperts + " tp=" + tp);
  }

  @Test
  void rejectsBadArguments() {
    float[] x = new float[14];
    int[] split = {2, 1, 3};
    assertRejects(() -> TeSortChunks.moeSortChunksByIndex(x, 7, 2, split, new int[] {2, 0, 0}),
        "sorted_index[2] = 0 repeats sorted_index[1]", "permutation");
    assertRejects(() -> TeSortChunks.moeSortChunksByIndex(x, 7, 2, split, new int[] {2, 0, 3}),
        "sorted_index[2] = 3", "[0, 3)");
    assertRejects(() -> TeSortChunks.moeSortChunksByIndex(x, 7, 2, split, new int[] {2, 0}), "sorted_index",
        "expected 3", "got 2");
    assertRejects(() -> TeSortChunks.moeSortChunksByIndex(x, 7, 2, new int[] {2, -1, 3}, new int[] {2, 0, 1}),
        "split_sizes[1] must be >= 0, got -1");
    assertRejects(() -> TeSortChunks.moeSortChunksByIndex(x, 7, 2, new int[] {2, 3, 3}, new int[] {2, 0, 1}),
        "sum(split_sizes) = 8 exceeds num_tokens = 7");
    assertRejects(() -> TeSortChunks.moeSortChunksByIndex(x, 6, 2, split, new int[] {2, 0, 1}), "inp",
        "expected 12", "got 14");
    assertRejects(() -> TeSortChunks.moeSortChunksByIndexWithProbs(x, 7, 2, new float[6], split,
        new int[] {2, 0, 1}), "probs", "expected 7", "got 6");
    assertThrows(NullPointerException.class,
        () -> TeSortChunks.moeSortChunksByIndex(x, 7, 2, null, new int[] {2, 0, 1}));
  }
}
