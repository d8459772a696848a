package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.formats.Bf16;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/** The GPU moe_dispatch against MoeDispatch: maps and rows bit for bit, weights within fp32 tolerance. */
@Tag("gpu")
class MoeDispatchGpuTest extends DeviceTest {
  /**
   * Gating values on a grid: each row is a random permutation of {@code -4 + 8·i/E} (i < E), so
   * distinct values are at least 8/E apart (≥ 1.5% in probability) and no softmax selection is a
   * near-tie; with {@code ties} every row also repeats its maximum at a higher index.
   */
  static float[] gating(SplittableRandom rnd, int tokens, int experts, boolean ties) {
    float[] g = new float[tokens * experts];
    for (int t = 0; t < tokens; t++) {
      int[] perm = rnd.ints(0, experts).distinct().limit(experts).toArray();
      for (int i = 0; i < experts; i++) {
        g[t * experts + i] = -4f + 8f * perm[i] / experts;
      }
      if (ties && experts > 2) {
        int lo = rnd.nextInt(experts - 1);
        int hi = lo + 1 + rnd.nextInt(experts - 1 - lo);
        float m = 5f;
        g[t * experts + lo] = m;
        g[t * experts + hi] = m;
      }
    }
    return g;
  }

  @ParameterizedTest(name = "T={0} E={1} k={2} H={3} group={4} topkOnly={5}")
  @CsvSource({
      "0, 8, 2, 64, false, false", "1, 8, 2, 64, false, false", "1223, 8, 2, 128, false, false",
      "1583, 7, 3, 33, false, false", "1223, 64, 8, 256, false, false", "601, 128, 8, 2048, false, false",
      "1223, 256, 8, 64, false, true", "1223, 60, 6, 96, true, false", "1583, 384, 8, 16, true, false",
      "1223, 16, 4, 40, true, true", "37, 1, 1, 8, false, false", "1223, 48, 5, 24, false, true"})
  void matchesCpu(int tokens, int experts, int k, int hidden, boolean groupMoe, boolean topkOnly) {
    SplittableRandom rnd = new SplittableRandom(tokens * 7L + experts);
    float[] g = gating(rnd, tokens, experts, rnd.nextBoolean());
    short[] x = new short[tokens * hidden];
    for (int i = 0; i < x.length; i++) {
      x[i] = (short) rnd.nextInt();
    }
    MoeDispatch.Result<short[]> cpu = MoeDispatch.dispatch(x, tokens, hidden, g, experts, k, groupMoe, topkOnly);
    try (DeviceBuffer dx = alloc.upload(x, "x"); DeviceBuffer dg = alloc.upload(g, "gating");
        MoeDispatchGpu.DeviceDispatch d = MoeDispatchGpu.dispatch(alloc, dx, 2L * hidden, dg, tokens, experts, k,
            groupMoe, topkOnly)) {
      int n = tokens * k;
      String what = "dispatch T=" + tokens + " E=" + experts + " k=" + k;
      assertArrayEquals(cpu.topKIndices(), d.topKIndices.toInts(n), what + ": topKIndices");
      assertArrayEquals(cpu.tokenNumsPerExpert(), d.tokenNumsPerExpert, what + ": tokenNumsPerExpert");
      assertArrayEquals(cpu.permuteIndicesPerToken(), d.permuteIndicesPerToken.toInts(n), what + ": perm");
      assertArrayEquals(cpu.permuteInput(), d.permuteInput.toShorts(n * hidden), what + ": permuteInput");
      Tolerance.FP32.assertClose(d.expertScalesFloat.toFloats(n), cpu.expertScalesFloat(), what + ": weights");
      if (topkOnly) {
        Tolerance.assertBitEqual(d.expertScalesFloat.toFloats(n), cpu.expertScalesFloat(), what + ": raw weights");
      }
      MoeDispatch.Maps maps = MoeDispatch.maps(g, tokens, experts, k, groupMoe, topkOnly);
      assertArrayEquals(maps.sourceTokenOfRow(), d.sourceTokenOfRow.toInts(n), what + ": sourceTokenOfRow");
    }
  }

  /** fp32 rows, and values below -1 in topkOnlyMode (upstream's seed bug is not reproduced). */
  @Test
  void fp32RowsAndNegativeRawValues() {
    int tokens = 300;
    int experts = 32;
    int k = 4;
    int hidden = 48;
    SplittableRandom rnd = new SplittableRandom(4);
    float[] g = gating(rnd, tokens, experts, false);
    for (int i = 0; i < g.length; i++) {
      g[i] -= 10f;  // everything below -1
    }
    float[] x = new float[tokens * hidden];
    for (int i = 0; i < x.length; i++) {
      x[i] = Bf16.decode((short) rnd.nextInt());
    }
    MoeDispatch.Result<float[]> cpu = MoeDispatch.dispatch(x, tokens, hidden, g, experts, k, false, true);
    try (DeviceBuffer dx = alloc.upload(x, "x"); DeviceBuffer dg = alloc.upload(g, "gating");
        MoeDispatchGpu.DeviceDispatch d = MoeDispatchGpu.dispatch(alloc, dx, 4L * hidden, dg, tokens, experts, k,
            false, true)) {
      int n = tokens * k;
      assertArrayEquals(cpu.topKIndices(), d.topKIndices.toInts(n), "topKIndices");
      Tolerance.assertBitEqual(d.permuteInput.toFloats(n * hidden), cpu.permuteInput(), "permuteInput");
      Tolerance.assertBitEqual(d.expertScalesFloat.toFloats(n), cpu.expertScalesFloat(), "raw weights");
    }
  }
}
