package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.testing.DeviceTest;

/** The GPU Paddle permute/unpermute against the CPU reference, bit for bit. */
@Tag("gpu")
class MoePermuteGpuTest extends DeviceTest {
  /** A routemap with distinct experts per token, some empty slots and some tokens routed nowhere. */
  static int[] route(SplittableRandom rnd, int tokens, int topK, int experts) {
    int[] r = new int[tokens * topK];
    for (int t = 0; t < tokens; t++) {
      boolean nowhere = rnd.nextInt(17) == 0;
      int[] perm = rnd.ints(0, experts).distinct().limit(Math.min(topK, experts)).toArray();
      for (int k = 0; k < topK; k++) {
        r[t * topK + k] = nowhere || k >= perm.length || rnd.nextInt(9) == 0 ? -1 : perm[k];
      }
    }
    return r;
  }

  static int[] histogram(int[] route, int experts) {
    int[] h = new int[experts];
    for (int e : route) {
      if (e >= 0) {
        h[e]++;
      }
    }
    return h;
  }

  static short[] bf16(SplittableRandom rnd, int n) {
    short[] a = new short[n];
    for (int i = 0; i < n; i++) {
      a[i] = org.moespark.formats.Bf16.encode((float) rnd.nextGaussian());
    }
    return a;
  }

  @ParameterizedTest
  @CsvSource({"0,8,2,1,128", "1,1,1,1,8", "37,3,2,2,64", "1223,7,5,16,129", "1583,16,8,8,4096", "4099,64,8,128,2048",
      "2048,256,8,1,512", "513,384,1,3,7"})
  void matchesCpuBitForBit(int tokens, int experts, int topK, int align, int hidden) {
    SplittableRandom rnd = new SplittableRandom(tokens * 31L + experts);
    int[] route = route(rnd, tokens, topK, experts);
    float[] probs = new float[tokens * topK];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = (float) rnd.nextDouble();
    }
    int[] tpe = histogram(route, experts);
    MoePermute.Maps cpu = MoePermute.maps(route, probs, tokens, topK, experts, tpe, align);
    short[] x = bf16(rnd, tokens * hidden);
    float[] xf = new float[tokens * hidden];
    for (int i = 0; i < xf.length; i++) {
      xf[i] = (float) rnd.nextGaussian();
    }
    byte[] x8 = new byte[tokens * hidden];
    rnd.nextBytes(x8);
    try (DeviceBuffer dRoute = alloc.upload(route, "route"); DeviceBuffer dProbs = alloc.upload(probs, "probs");
        MoePermuteGpu.DeviceMaps gpu = MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, topK, experts, tpe, align)) {
      assertEquals(cpu.rows(), gpu.rows);
      assertArrayEquals(cpu.expertRowOffsets(), gpu.expertRowOffsets);
      assertArrayEquals(cpu.zippedExpertwiseRowmap(), gpu.rowmap.toInts(tokens * experts), "rowmap");
      assertArrayEquals(floatBits(cpu.tokenProbUnzipped()), floatBits(gpu.tokenProbUnzipped.toFloats(cpu.rows())), "probs");
      assertArrayEquals(cpu.expertIndices(), gpu.expertIndices.toInts(cpu.rows()), "expert indices");

      try (DeviceBuffer dx = alloc.upload(x, "x"); DeviceBuffer g = MoePermuteGpu.gather(alloc, gpu, dx, 2L * hidden)) {
        short[] want = MoePermute.gather(cpu, x, hidden);
        assertArrayEquals(want, g.toShorts(want.length), "bf16 rows");
        try (DeviceBuffer p = MoePermuteGpu.permuteRows(alloc, gpu, dx, 2L * hidden)) {
          assertArrayEquals(want, p.toShorts(want.length), "bf16 rows (read once, write k)");
        }
        // unpermute the permuted rows (weighted and not) and compare with the CPU reduction
        for (boolean weighted : new boolean[] {false, true}) {
          MoeUnpermute.Result<short[]> ref = MoeUnpermute.unpermute(want, cpu.rows(), hidden,
              cpu.zippedExpertwiseRowmap(), route, cpu.tokenProbUnzipped(), tokens, topK, experts, true, weighted);
          try (MoePermuteGpu.DeviceUnpermuted u = MoePermuteGpu.unpermute(alloc, true, g, cpu.rows(), hidden,
              gpu.rowmap, dRoute, gpu.tokenProbUnzipped, tokens, topK, experts, weighted)) {
            assertArrayEquals(ref.hiddenStates(), u.hiddenStates().toShorts(tokens * hidden), "bf16 unpermute w=" + weighted);
            assertArrayEquals(floatBits(ref.expertProbTopk()), floatBits(u.expertProbTopk().toFloats(tokens * topK)));
          }
        }
      }
      try (DeviceBuffer dx = alloc.upload(xf, "xf"); DeviceBuffer g = MoePermuteGpu.gather(alloc, gpu, dx, 4L * hidden)) {
        float[] want = MoePermute.gather(cpu, xf, hidden);
        assertArrayEquals(floatBits(want), floatBits(g.toFloats(want.length)), "fp32 rows");
        try (DeviceBuffer p = MoePermuteGpu.permuteRows(alloc, gpu, dx, 4L * hidden)) {
          assertArrayEquals(floatBits(want), floatBits(p.toFloats(want.length)), "fp32 rows (read once, write k)");
        }
        MoeUnpermute.Result<float[]> ref = MoeUnpermute.unpermute(want, cpu.rows(), hidden,
            cpu.zippedExpertwiseRowmap(), route, cpu.tokenProbUnzipped(), tokens, topK, experts, true);
        try (MoePermuteGpu.DeviceUnpermuted u = MoePermuteGpu.unpermute(alloc, false, g, cpu.rows(), hidden,
            gpu.rowmap, dRoute, gpu.tokenProbUnzipped, tokens, topK, experts, true)) {
          assertArrayEquals(floatBits(ref.hiddenStates()), floatBits(u.hiddenStates().toFloats(tokens * hidden)),
              "fp32 weighted unpermute");
        }
      }
      try (DeviceBuffer dx = alloc.upload(x8, "x8"); DeviceBuffer g = MoePermuteGpu.gather(alloc, gpu, dx, hidden)) {
        byte[] want = MoePermute.gather(cpu, x8, hidden);
        assertArrayEquals(want, g.toBytes(want.length), "fp8 rows");
        try (DeviceBuffer p = MoePermuteGpu.permuteRows(alloc, gpu, dx, hidden)) {
          assertArrayEquals(want, p.toBytes(want.length), "fp8 rows (read once, write k)");
        }
      }
      // no tokensPerExpert: the maps size themselves from the counts made on the device, and are the same
      try (MoePermuteGpu.DeviceMaps counted = MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, topK, experts, null,
          align); DeviceBuffer dx = alloc.upload(x, "x")) {
        assertEquals(cpu.rows(), counted.rows, "rows, counted on the device");
        assertArrayEquals(cpu.expertRowOffsets(), counted.expertRowOffsets, "offsets, counted on the device");
        assertEquals(gpu.hasPadding, counted.hasPadding);
        assertArrayEquals(cpu.zippedExpertwiseRowmap(), counted.rowmap.toInts(tokens * experts), "rowmap (counted)");
        assertArrayEquals(floatBits(cpu.tokenProbUnzipped()), floatBits(counted.tokenProbUnzipped.toFloats(cpu.rows())),
            "probs (counted)");
        assertArrayEquals(cpu.expertIndices(), counted.expertIndices.toInts(cpu.rows()), "expert indices (counted)");
        assertArrayEquals(gpu.sourceRow.toInts(cpu.rows()), counted.sourceRow.toInts(cpu.rows()), "source rows (counted)");
        try (DeviceBuffer p = MoePermuteGpu.permuteRows(alloc, counted, dx, 2L * hidden)) {
          short[] want = MoePermute.gather(cpu, x, hidden);
          assertArrayEquals(want, p.toShorts(want.length), "bf16 rows (counted maps)");
        }
      }
    }
  }

  @Test
  void sameInputSameBits() {
    SplittableRandom rnd = new SplittableRandom(5);
    int tokens = 3001;
    int experts = 64;
    int topK = 6;
    int[] route = route(rnd, tokens, topK, experts);
    float[] probs = new float[tokens * topK];
    int[] tpe = histogram(route, experts);
    try (DeviceBuffer dRoute = alloc.upload(route, "route"); DeviceBuffer dProbs = alloc.upload(probs, "probs");
        MoePermuteGpu.DeviceMaps a = MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, topK, experts, tpe, 4);
        MoePermuteGpu.DeviceMaps b = MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, topK, experts, tpe, 4)) {
      assertArrayEquals(a.rowmap.toInts(tokens * experts), b.rowmap.toInts(tokens * experts));
    }
  }

  @Test
  void rejectsInconsistentTokensPerExpertBeforeWriting() {
    int[] route = {0, 1, 1, -1};
    int[] wrong = {1, 1};
    try (DeviceBuffer dRoute = alloc.upload(route, "route"); DeviceBuffer dProbs = alloc.upload(new float[4], "probs")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> MoePermuteGpu.maps(alloc, dRoute, dProbs, 2, 2, 2, wrong, 1));
      assertTrue(e.getMessage().contains("tokensPerExpert[1] = 1") && e.getMessage().contains("routes 2"), e.getMessage());
    }
    int[] dup = {0, 0, 1, -1};
    try (DeviceBuffer dRoute = alloc.upload(dup, "route"); DeviceBuffer dProbs = alloc.upload(new float[4], "probs")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> MoePermuteGpu.maps(alloc, dRoute, dProbs, 2, 2, 2, new int[] {2, 1}, 1));
      assertTrue(e.getMessage().contains("row 0") && e.getMessage().contains("twice"), e.getMessage());
    }
    int[] outOfRange = {0, 5};
    try (DeviceBuffer dRoute = alloc.upload(outOfRange, "route"); DeviceBuffer dProbs = alloc.upload(new float[2], "probs")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> MoePermuteGpu.maps(alloc, dRoute, dProbs, 1, 2, 2, new int[] {1, 0}, 1));
      assertTrue(e.getMessage().contains("row 0") && e.getMessage().contains("outside"), e.getMessage());
      // counted on the device (no tokensPerExpert): the routemap is still validated before anything is written
      e = assertThrows(IllegalArgumentException.class, () -> MoePermuteGpu.maps(alloc, dRoute, dProbs, 1, 2, 2, null, 1));
      assertTrue(e.getMessage().contains("row 0") && e.getMessage().contains("outside"), e.getMessage());
    }
    try (DeviceBuffer dRoute = alloc.upload(dup, "route"); DeviceBuffer dProbs = alloc.upload(new float[4], "probs")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> MoePermuteGpu.maps(alloc, dRoute, dProbs, 2, 2, 2, null, 1));
      assertTrue(e.getMessage().contains("twice"), e.getMessage());
    }
  }

  static int[] floatBits(float[] a) {
    int[] b = new int[a.length];
    for (int i = 0; i < a.length; i++) {
      b[i] = Float.floatToRawIntBits(a[i]);
    }
    return b;
  }
}
