package org.moespark.ops;

import static org.moespark.ops.TeGpuTesting.assertFloats;
import static org.moespark.ops.TeGpuTesting.assertInts;
import static org.moespark.ops.TeGpuTesting.assertShorts;
import static org.moespark.ops.TeGpuTesting.up;

import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.testing.DeviceTest;

/**
 * {@link TeSortChunksGpu} against the CPU reference {@link TeSortChunks}, bit for bit, over the
 * EP/TP regrouping cases of {@link TeSortChunksTest} (N ∈ {0,1223,1583}, E ∈ {1,7,16}, tp ∈ {1,2,4,8},
 * empty chunks, an unsorted tail), plus random permutations and wide rows.
 */
@Tag("gpu")
class TeSortChunksGpuTest extends DeviceTest {
  @ParameterizedTest(name = "N={0} E={1} tp={2}")
  @MethodSource("org.moespark.ops.TeSortChunksTest#tpCases")
  void tpRegroupingMatchesCpuBitForBit(int n, int numExperts, int tp) {
    Random rnd = new Random(113L * n + 3L * numExperts + tp);
    int chunks = numExperts * tp;
    int[] split = TeSortChunksTest.randomSplits(rnd, n, chunks);
    int[] order = new int[chunks];
    for (int q = 0; q < chunks; q++) {
      order[q] = (q % tp) * numExperts + q / tp; // TE-TEST: arange(E * tp).reshape(tp, E).T.ravel()
    }
    check(rnd, n, 5, split, order, "N=" + n + " E=" + numExperts + " tp=" + tp);
    check(rnd, n, 8, split, order, "N=" + n + " E=" + numExperts + " tp=" + tp + " H=8");
  }

  @ParameterizedTest(name = "N={0} chunks={1} hidden={2}")
  @CsvSource({"1223, 37, 1032", "1583, 256, 24", "17, 1, 4096", "301, 5, 1", "64, 64, 0"})
  void randomPermutationsMatchCpuBitForBit(int n, int chunks, int hidden) {
    Random rnd = new Random(n * 7L + chunks);
    int[] split = TeSortChunksTest.randomSplits(rnd, n, chunks);
    int[] order = new int[chunks];
    for (int q = 0; q < chunks; q++) {
      order[q] = q;
    }
    for (int q = chunks - 1; q > 0; q--) {
      int j = rnd.nextInt(q + 1);
      int t = order[q];
      order[q] = order[j];
      order[j] = t;
    }
    check(rnd, n, hidden, split, order, "N=" + n + " C=" + chunks + " H=" + hidden);
  }

  private static void check(Random rnd, int n, int hidden, int[] split, int[] order, String tag) {
    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    float[] probs = TeTestSupport.gaussian(rnd, n);
    try (DeviceBuffer map = TeSortChunksGpu.makeChunkSortMap(alloc, split, order, n)) {
      assertInts(TeSortChunks.makeChunkSortMap(split, order, n), map, tag + ": chunk sort map");
    }
    TeSortChunks.Sorted<float[]> cpu = TeSortChunks.moeSortChunksByIndexWithProbs(x, n, hidden, probs, split, order);
    try (DeviceBuffer dx = up(alloc, x); DeviceBuffer dxb = up(alloc, xb); DeviceBuffer dp = up(alloc, probs);
        TeSortChunksGpu.Sorted g = TeSortChunksGpu.moeSortChunksByIndexWithProbs(alloc, TeDtype.FP32, dx, n, hidden, dp,
            split, order);
        DeviceBuffer gb = TeSortChunksGpu.moeSortChunksByIndex(alloc, TeDtype.BF16, dxb, n, hidden, split, order);
        DeviceBuffer gf = TeSortChunksGpu.moeSortChunksByIndex(alloc, TeDtype.FP32, dx, n, hidden, split, order)) {
      assertFloats(cpu.output(), g.output(), tag + ": fp32 rows");
      assertFloats(cpu.permutedProbs(), g.permutedProbs(), tag + ": probs");
      assertFloats(cpu.output(), gf, tag + ": fp32 rows (no probs)");
      assertShorts(TeSortChunks.moeSortChunksByIndex(xb, n, hidden, split, order), gb, tag + ": bf16 rows");
    }
  }

  @Test
  void noChunksIsTheIdentity() {
    float[] x = {1, 2, 3, 4, 5, 6};
    try (DeviceBuffer dx = up(alloc, x);
        DeviceBuffer g = TeSortChunksGpu.moeSortChunksByIndex(alloc, TeDtype.FP32, dx, 3, 2, new int[0], new int[0])) {
      assertFloats(x, g, "no chunks");
    }
  }
}
