package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * {@link TePermuteGpu} against the CPU reference {@link TePermute}, bit for bit, over the conformance
 * sweep of {@link TePermuteTest} (E ∈ {1,3,7,16,64,256}, topK ∈ {1,2,5,8}, N ∈ {0,1,1223,1583},
 * sentinels -1/-2/MIN_VALUE, tokens routed nowhere, num_out_tokens dropping).
 */
@Tag("gpu")
class TePermuteGpuTest extends DeviceTest {
  @ParameterizedTest(name = "N={0} E={1} topK={2}")
  @MethodSource("org.moespark.ops.TePermuteTest#sweep")
  void sweepMatchesCpuBitForBit(int n, int numExperts, int topK) {
    Random rnd = new Random(131L * n + 7L * numExperts + topK);
    int[] indices = TePermuteTest.randomIndices(rnd, n, numExperts, topK);
    int expanded = n * topK;
    int valid = TePermuteTest.countValid(indices);
    int[] numOuts = {0, valid, Math.min(2039, expanded), expanded == 0 ? 0 : 1 + rnd.nextInt(expanded)};
    int hidden = 8;
    check(rnd, indices, n, topK, hidden, numOuts);
  }

  /** Wider rows (several 16-byte vectors per lane and a partial last step) and odd vector counts. */
  @ParameterizedTest(name = "N={0} E={1} topK={2} hidden={3}")
  @CsvSource({"1223, 64, 8, 1032", "257, 7, 5, 4096", "33, 256, 8, 24", "1583, 16, 2, 136"})
  void widerRowsMatchCpuBitForBit(int n, int numExperts, int topK, int hidden) {
    Random rnd = new Random(n + hidden);
    int[] indices = TePermuteTest.randomIndices(rnd, n, numExperts, topK);
    check(rnd, indices, n, topK, hidden, new int[] {0, TePermuteTest.countValid(indices)});
  }

  private static void check(Random rnd, int[] indices, int n, int topK, int hidden, int[] numOuts) {
    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    short[] xb = TeTestSupport.bf16Tokens(rnd, n * hidden);
    float[] probs = TeTestSupport.gaussian(rnd, n * topK);
    try (DeviceBuffer dIdx = up(alloc, indices); DeviceBuffer dx = up(alloc, x); DeviceBuffer dxb = up(alloc, xb);
        DeviceBuffer dProbs = up(alloc, probs)) {
      for (int numOut : numOuts) {
        String tag = "N=" + n + " K=" + topK + " H=" + hidden + " num_out=" + numOut;
        TePermute.Result<float[]> cpu = TePermute.moePermute(x, n, hidden, indices, topK, numOut);
        TePermute.Result<short[]> cpub = TePermute.moePermute(xb, n, hidden, indices, topK, numOut);
        int rows = cpu.numOutTokens();
        try (DeviceBuffer map = TePermuteGpu.makeRowIdMap(alloc, dIdx, n, topK, numOut)) {
          assertInts(cpu.rowIdMap(), map, tag + ": makeRowIdMap");
        }
        try (TePermuteGpu.Result g = TePermuteGpu.moePermute(alloc, TeDtype.FP32, dx, n, hidden, dIdx, topK, numOut);
            TePermuteGpu.Result gb = TePermuteGpu.moePermute(alloc, TeDtype.BF16, dxb, n, hidden, dIdx, topK, numOut)) {
          assertEquals(rows, g.numOutTokens(), tag);
          assertInts(cpu.rowIdMap(), g.rowIdMap(), tag + ": row_id_map");
          assertFloats(cpu.permuted(), g.permuted(), tag + ": permuted fp32");
          assertInts(cpub.rowIdMap(), gb.rowIdMap(), tag + ": row_id_map (bf16)");
          assertShorts(cpub.permuted(), gb.permuted(), tag + ": permuted bf16");

          // unpermute the CPU's permuted rows with the GPU and the CPU
          try (DeviceBuffer u = TePermuteGpu.moeUnpermute(alloc, TeDtype.FP32, g.permuted(), rows, hidden, g.rowIdMap(),
              dProbs, n, topK)) {
            assertFloats(TePermute.moeUnpermute(cpu.permuted(), rows, hidden, cpu.rowIdMap(), probs, n, topK), u,
                tag + ": unpermute fp32 with probs");
          }
          try (DeviceBuffer u = TePermuteGpu.moeUnpermute(alloc, TeDtype.FP32, g.permuted(), rows, hidden, g.rowIdMap(),
              null, n, topK)) {
            assertFloats(TePermute.moeUnpermute(cpu.permuted(), rows, hidden, cpu.rowIdMap(), null, n, topK), u,
                tag + ": unpermute fp32 sum");
          }
          for (TePermute.Accumulation acc : TePermute.Accumulation.values()) {
            try (DeviceBuffer u = TePermuteGpu.moeUnpermute(alloc, TeDtype.BF16, gb.permuted(), rows, hidden,
                gb.rowIdMap(), dProbs, n, topK, acc);
                DeviceBuffer s = TePermuteGpu.moeUnpermute(alloc, TeDtype.BF16, gb.permuted(), rows, hidden,
                    gb.rowIdMap(), null, n, topK, acc)) {
              assertShorts(TePermute.moeUnpermute(cpub.permuted(), rows, hidden, cpub.rowIdMap(), probs, n, topK, acc), u,
                  tag + ": unpermute bf16 with probs " + acc);
              assertShorts(TePermute.moeUnpermute(cpub.permuted(), rows, hidden, cpub.rowIdMap(), null, n, topK, acc), s,
                  tag + ": unpermute bf16 sum " + acc);
            }
          }
          // TE-PY's no-probs overload (topK = 1 view of the whole map)
          try (DeviceBuffer u = TePermuteGpu.moeUnpermute(alloc, TeDtype.FP32, g.permuted(), rows, hidden, g.rowIdMap(),
              n * topK);
              DeviceBuffer ub = TePermuteGpu.moeUnpermute(alloc, TeDtype.BF16, gb.permuted(), rows, hidden, gb.rowIdMap(),
                  n * topK)) {
            assertFloats(TePermute.moeUnpermute(cpu.permuted(), rows, hidden, cpu.rowIdMap()), u, tag + ": no-probs fp32");
            assertShorts(TePermute.moeUnpermute(cpub.permuted(), rows, hidden, cpub.rowIdMap()), ub,
                tag + ": no-probs bf16");
          }
        }
      }
    }
  }

  /** Buffers that are views at 4-byte offsets take the narrow (non-16-byte) paths; same bits. */
  @Test
  void misalignedViewsMatchCpu() {
    Random rnd = new Random(3);
    int n = 301;
    int topK = 4;
    int hidden = 12;
    int[] indices = TePermuteTest.randomIndices(rnd, n, 16, topK);
    float[] x = TeTestSupport.gaussian(rnd, n * hidden);
    float[] probs = TeTestSupport.gaussian(rnd, n * topK);
    float[] padded = new float[x.length + 1];
    System.arraycopy(x, 0, padded, 1, x.length);
    TePermute.Result<float[]> cpu = TePermute.moePermute(x, n, hidden, indices, topK, 0);
    int rows = cpu.numOutTokens();
    float[] permPadded = new float[rows * hidden + 1];
    System.arraycopy(cpu.permuted(), 0, permPadded, 1, rows * hidden);
    try (DeviceBuffer dIdx = up(alloc, indices); DeviceBuffer dxp = up(alloc, padded); DeviceBuffer dProbs = up(alloc, probs);
        DeviceBuffer dPerm = up(alloc, permPadded);
        TePermuteGpu.Result g = TePermuteGpu.moePermute(alloc, TeDtype.FP32, dxp.view(4, 4L * x.length), n, hidden, dIdx,
            topK, 0);
        DeviceBuffer u = TePermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dPerm.view(4, 4L * rows * hidden), rows, hidden,
            g.rowIdMap(), dProbs, n, topK)) {
      assertFloats(cpu.permuted(), g.permuted(), "permuted from a misaligned view");
      assertFloats(TePermute.moeUnpermute(cpu.permuted(), rows, hidden, cpu.rowIdMap(), probs, n, topK), u,
          "unpermuted from a misaligned view");
    }
  }

  @Test
  void sameInputSameBits() {
    Random rnd = new Random(11);
    int n = 4099;
    int topK = 8;
    int[] indices = TePermuteTest.randomIndices(rnd, n, 64, topK);
    try (DeviceBuffer dIdx = up(alloc, indices); DeviceBuffer a = TePermuteGpu.makeRowIdMap(alloc, dIdx, n, topK, 0);
        DeviceBuffer b = TePermuteGpu.makeRowIdMap(alloc, dIdx, n, topK, 0)) {
      assertInts(a.toInts(n * topK), b, "second run");
    }
  }

  @Test
  void deviceDataErrorsNameTheOffender() {
    int[] ok = {0, 1, 2, 3, 5, 2, -1, -1}; // topK 2: {0,1} {2,3} {5,2} {-1,-1}: repeated sentinels only
    int[] bad = {4, 4, 1, 0};               // topK 2: token 0 lists expert 4 twice
    int[] bad4 = {0, 1, 2, 3, 7, 2, 7, -1}; // topK 4: token 1 lists expert 7 in slots 0 and 2
    try (DeviceBuffer dOk = up(alloc, ok); DeviceBuffer dBad = up(alloc, bad); DeviceBuffer dBad4 = up(alloc, bad4)) {
      try (DeviceBuffer m = TePermuteGpu.makeRowIdMap(alloc, dOk, 4, 2, 0)) {
        assertInts(TePermute.makeRowIdMap(ok, 4, 2, 0), m, "sentinel-only repeats are fine");
      }
      assertRejects(() -> TePermuteGpu.makeRowIdMap(alloc, dBad, 2, 2, 0), "token 0", "expert 4", "slots 0 and 1");
      assertRejects(() -> TePermuteGpu.makeRowIdMap(alloc, dBad4, 2, 4, 0), "token 1", "expert 7", "slots 0 and 2");
    }
    int[] map = {0, -1, 3, 1};  // topK 2, N 2, only 3 rows
    try (DeviceBuffer dMap = up(alloc, map); DeviceBuffer dx = up(alloc, new float[3 * 4])) {
      assertRejects(() -> TePermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dx, 3, 4, dMap, null, 2, 2),
          "row_id_map[2]", "(k=1, token 0) = 3", "[0, 3)");
      int[] minus2 = {0, -2};
      try (DeviceBuffer dM2 = up(alloc, minus2)) {
        assertRejects(() -> TePermuteGpu.moeUnpermute(alloc, TeDtype.FP32, dx, 3, 0, dM2, null, 2, 1),
            "row_id_map[1]", "= -2");
      }
    }
  }
}
