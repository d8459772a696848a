package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.moespark.ops.TeGpuTesting.assertFloats;
import static org.moespark.ops.TeGpuTesting.assertInts;
import static org.moespark.ops.TeGpuTesting.assertShorts;
import static org.moespark.ops.TeGpuTesting.up;
import static org.moespark.ops.TeTestSupport.assertRejects;

import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.testing.DeviceTest;

/**
 * {@link TeMaskPermuteGpu} against the CPU reference {@link TeMaskPermute}, bit for bit, over the
 * conformance sweep of {@link TeMaskPermuteTest} (E ∈ {1,3,7,16,64,256}, routed count from topK ∈
 * {1,2,5,8}, N ∈ {0,1,1223,1583}, 0..E experts per token incl. tokens routed nowhere, ±0 probs,
 * padding to 1, 4, 16 and 128 rows).
 */
@Tag("gpu")
class TeMaskPermuteGpuTest extends DeviceTest {
  @ParameterizedTest(name = "N={0} E={1} topK={2}")
  @MethodSource("org.moespark.ops.TeMaskPermuteTest#sweep")
  void sweepMatchesCpuBitForBit(int n, int numExperts, int topK) {
    check(n, numExperts, topK, 7, new Random(171L * n + 5L * numExperts + topK));
  }

  @ParameterizedTest(name = "N={0} E={1} topK={2} hidden={3}")
  @CsvSource({"1223, 64, 8, 1032", "257, 7, 5, 4096", "33, 256, 8, 24", "1583, 16, 2, 136", "97, 300, 40, 8"})
  void widerRowsMatchCpuBitForBit(int n, int numExperts, int topK, int hidden) {
    check(n, numExperts, topK, hidden, new Random(n + hidden));
  }

  private static void check(int n, int numExperts, int topK, int hidden, Random rnd) {
    int numOut = Math.min(n * topK, n * numExperts);
    byte[] map = TeMaskPermuteTest.randomRoutingMap(rnd, n, numExperts, numOut);
    int[] counts = TeMaskPermuteTest.columnSums(map, n, numExperts);
    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    float[] probs = TeMaskPermuteTest.maskedProbs(rnd, map);
    for (int i = 0; i < probs.length; i += 97) {
      if (map[i] == 1) {
        probs[i] = -0.0f; // a negative zero prob also gives a zero row
      }
    }
    float[] merging = TeTestSupport.gaussian(rnd, n * numExperts);
    String tag = "N=" + n + " E=" + numExperts + " K=" + topK + " H=" + hidden;
    try (DeviceBuffer dMap = up(alloc, map); DeviceBuffer dx = up(alloc, x); DeviceBuffer dxb = up(alloc, xb);
        DeviceBuffer dProbs = up(alloc, probs); DeviceBuffer dMerging = up(alloc, merging)) {
      int[] cpuMap = TeMaskPermute.makeRowIdMap(map, n, numExperts);
      try (DeviceBuffer m = TeMaskPermuteGpu.makeRowIdMap(alloc, dMap, n, numExperts)) {
        assertInts(cpuMap, m, tag + ": makeRowIdMap");
      }
      TeMaskPermute.Permuted<float[]> plain = TeMaskPermute.moePermute(x, n, hidden, map, numExperts, numOut);
      TeMaskPermute.PermutedWithProbs<short[]> wpb =
          TeMaskPermute.moePermuteWithProbs(xb, n, hidden, probs, map, numExperts, numOut);
      TeMaskPermute.PermutedWithProbs<float[]> wp =
          TeMaskPermute.moePermuteWithProbs(x, n, hidden, probs, map, numExperts, numOut);
      try (TeMaskPermuteGpu.Permuted g = TeMaskPermuteGpu.moePermute(alloc, TeDtype.FP32, dx, n, hidden, dMap,
          numExperts, numOut);
          TeMaskPermuteGpu.Permuted gb = TeMaskPermuteGpu.moePermuteWithProbs(alloc, TeDtype.BF16, dxb, n, hidden,
              dProbs, dMap, numExperts, numOut);
          TeMaskPermuteGpu.Permuted gp = TeMaskPermuteGpu.moePermuteWithProbs(alloc, TeDtype.FP32, dx, n, hidden,
              dProbs, dMap, numExperts, numOut)) {
        assertNull(g.permutedProbs(), tag);
        assertInts(plain.rowIdMap(), g.rowIdMap(), tag + ": row_id_map");
        assertFloats(plain.output(), g.output(), tag + ": permuted fp32");
        assertShorts(wpb.output(), gb.output(), tag + ": permuted bf16 with probs");
        assertFloats(wpb.permutedProbs(), gb.permutedProbs(), tag + ": permuted probs");
        assertFloats(wp.output(), gp.output(), tag + ": permuted fp32 with probs");

        // unpermute arbitrary expert outputs (with and without merging probs)
        float[] expertOut = TeTestSupport.gaussian(rnd, numOut * hidden);
        short[] expertOutB = TeTestSupport.bf16Tokens(rnd, numOut * hidden);
        try (DeviceBuffer dOut = up(alloc, expertOut); DeviceBuffer dOutB = up(alloc, expertOutB);
            DeviceBuffer u = TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dOut, numOut, hidden, g.rowIdMap(),
                numExperts, dMerging, n, null);
            DeviceBuffer us = TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dOut, numOut, hidden, g.rowIdMap(),
                numExperts, null, n, null);
            DeviceBuffer ub = TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.BF16, dOutB, numOut, hidden, g.rowIdMap(),
                numExperts, dMerging, n, null)) {
          assertFloats(TeMaskPermute.moeUnpermute(expertOut, numOut, hidden, cpuMap, numExperts, merging, n, null), u,
              tag + ": unpermute fp32 merging");
          assertFloats(TeMaskPermute.moeUnpermute(expertOut, numOut, hidden, cpuMap, numExperts, null, n, null), us,
              tag + ": unpermute fp32 sum");
          assertShorts(TeMaskPermute.moeUnpermute(expertOutB, numOut, hidden, cpuMap, numExperts, merging, n, null), ub,
              tag + ": unpermute bf16 merging");
        }
      }
      for (int align : new int[] {1, 4, 16, 128}) {
        String ptag = tag + " align=" + align;
        TeMaskPermute.PaddedPermuted<float[]> cp =
            TeMaskPermute.moePermuteAndPadWithProbs(x, n, hidden, probs, map, numExperts, counts, align);
        TeMaskPermute.PaddedPermuted<short[]> cpb =
            TeMaskPermute.moePermuteAndPadWithProbs(xb, n, hidden, probs, map, numExperts, counts, align);
        try (TeMaskPermuteGpu.Padded p = TeMaskPermuteGpu.moePermuteAndPadWithProbs(alloc, TeDtype.FP32, dx, n, hidden,
            dProbs, dMap, numExperts, counts, align);
            TeMaskPermuteGpu.Padded pb = TeMaskPermuteGpu.moePermuteAndPadWithProbs(alloc, TeDtype.BF16, dxb, n,
                hidden, dProbs, dMap, numExperts, counts, align)) {
          assertArrayEquals(cp.padOffsets(), p.padOffsets(), ptag + ": pad_offsets");
          assertArrayEquals(cp.targetTokensPerExpert(), p.targetTokensPerExpert(), ptag + ": target");
          assertInts(cp.rowIdMap(), p.rowIdMap(), ptag + ": row_id_map");
          assertFloats(cp.output(), p.output(), ptag + ": padded fp32");
          assertFloats(cp.permutedProbs(), p.permutedProbs(), ptag + ": padded probs");
          assertShorts(cpb.output(), pb.output(), ptag + ": padded bf16");
          int rows = cp.permutedProbs().length;
          float[] expertOut = TeTestSupport.gaussian(rnd, rows * hidden);
          short[] expertOutB = TeTestSupport.bf16Tokens(rnd, rows * hidden);
          try (DeviceBuffer dOut = up(alloc, expertOut); DeviceBuffer dOutB = up(alloc, expertOutB);
              DeviceBuffer u = TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dOut, rows, hidden, p.rowIdMap(),
                  numExperts, dMerging, n, p.padOffsets());
              DeviceBuffer ub = TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.BF16, dOutB, rows, hidden, p.rowIdMap(),
                  numExperts, null, n, p.padOffsets())) {
            assertFloats(TeMaskPermute.moeUnpermute(expertOut, rows, hidden, cp.rowIdMap(), numExperts, merging, n,
                cp.padOffsets()), u, ptag + ": unpermute padded fp32");
            assertShorts(TeMaskPermute.moeUnpermute(expertOutB, rows, hidden, cp.rowIdMap(), numExperts, null, n,
                cp.padOffsets()), ub, ptag + ": unpermute padded bf16 sum");
          }
        }
      }
    }
  }

  @Test
  void sameInputSameBits() {
    Random rnd = new Random(5);
    int n = 3001;
    int e = 64;
    byte[] map = TeMaskPermuteTest.randomRoutingMap(rnd, n, e, n * 6);
    try (DeviceBuffer dMap = up(alloc, map); DeviceBuffer a = TeMaskPermuteGpu.makeRowIdMap(alloc, dMap, n, e);
        DeviceBuffer b = TeMaskPermuteGpu.makeRowIdMap(alloc, dMap, n, e)) {
      assertInts(a.toInts(n * (2 * e + 1)), b, "second run");
    }
  }

  @Test
  void deviceDataErrorsMatchTheCpuMessages() {
    byte[] map = {1, 0, 1, 0, 1, 0, 2, 1}; // [4, 2]: entry (3, 0) = 2
    try (DeviceBuffer dMap = up(alloc, map); DeviceBuffer dx = up(alloc, new float[4 * 4]);
        DeviceBuffer dProbs = up(alloc, new float[8])) {
      assertRejects(() -> TeMaskPermuteGpu.makeRowIdMap(alloc, dMap, 4, 2), "routing_map[3][0] = 2",
          "expected 0 (not routed) or 1");
      byte[] ok = {1, 0, 1, 1, 0, 1, 0, 0};
      try (DeviceBuffer dOk = up(alloc, ok)) {
        assertRejects(() -> TeMaskPermuteGpu.moePermute(alloc, TeDtype.FP32, dx, 4, 4, dOk, 2, 3),
            "num_out_tokens = 3", "routes 4");
        assertRejects(() -> TeMaskPermuteGpu.moePermuteAndPadWithProbs(alloc, TeDtype.FP32, dx, 4, 4, dProbs, dOk, 2,
            new int[] {1, 3}, 4), "tokens_per_expert[0] = 1", "routes 2 tokens to expert 0");
      }
    }
    // a malformed caller map (E = 2, rows of 5): token 1 lists experts 0, 1 (ascending)
    int[] bad = {0, -1, 0, -1, 1, /* token 1 */ 1, 2, 0, 1, 2};
    try (DeviceBuffer dBad = up(alloc, bad); DeviceBuffer dIn = up(alloc, new float[3 * 4])) {
      assertRejects(() -> TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dIn, 3, 4, dBad, 2, null, 2, null),
          "row_id_map[1]: expert ids 0, 1", "not strictly descending");
      assertRejects(() -> TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dIn, 3, 4, dBad, 2, null, 1,
          new int[] {3, 0}), "row_id_map[0][0] = 0 (+ pad_offsets[0] = 3)", "[0, 3)");
    }
  }
}
