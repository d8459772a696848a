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

/** The GPU fused_transpose_split_quant against FusedTransposeSplitQuant, bit for bit, per expert. */
@Tag("gpu")
class FusedTransposeSplitQuantGpuTest extends DeviceTest {
  static short[] bf16Data(SplittableRandom rnd, int m, int k) {
    short[] x = new short[m * k];
    for (int i = 0; i < x.length; i++) {
      x[i] = Bf16.encode((float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(-8, 9))));
    }
    // a zero column block and a block with an infinity (scale 0 → NaN there, zeros elsewhere)
    if (m >= 128 && k >= 3) {
      for (int r = 0; r < 128; r++) {
        x[r * k + 1] = 0;
      }
      x[5 * k + 2] = Bf16.encode(Float.POSITIVE_INFINITY);
      x[6 * k] = Bf16.encode(Float.NaN);
    }
    return x;
  }

  /** tokens per expert, multiples of 128 summing to m, with empty experts. */
  static int[] split(SplittableRandom rnd, int m, int experts) {
    int[] tpe = new int[experts];
    int blocks = m / 128;
    for (int b = 0; b < blocks; b++) {
      tpe[rnd.nextInt(experts) / 2 * 2] += 128;  // odd experts stay empty
    }
    return tpe;
  }

  private static void assertExperts(FusedTransposeSplitQuant.Result cpu, FusedTransposeSplitQuantGpu.DeviceResult g,
      String what) {
    int[] tpe = cpu.tokensPerExpert();
    for (int e = 0; e < tpe.length; e++) {
      byte[] out = cpu.outs()[e];
      float[] sc = cpu.scales()[e];
      assertArrayEquals(out, out.length == 0 ? new byte[0] : g.out(e).toBytes(out.length), what + " out[" + e + "]");
      Tolerance.assertBitEqual(sc.length == 0 ? new float[0] : g.scales(e).toFloats(sc.length), sc,
          what + " scales[" + e + "]");
    }
  }

  @ParameterizedTest(name = "bf16 m={0} k={1} experts={2} pow2={3}")
  @CsvSource({"0, 256, 3, false", "128, 128, 1, false", "384, 7168, 4, true", "1024, 2048, 8, false",
      "640, 200, 5, true", "256, 1223, 3, false", "256, 1583, 2, true", "128, 1, 1, false", "512, 130, 7, true"})
  void bf16MatchesCpu(int m, int k, int experts, boolean pow2) {
    SplittableRandom rnd = new SplittableRandom(m * 7L + k);
    short[] x = bf16Data(rnd, m, k);
    int[] tpe = split(rnd, m, experts);
    FusedTransposeSplitQuant.Result cpu = FusedTransposeSplitQuant.quantize(x, m, k, tpe, pow2);
    try (DeviceBuffer dx = alloc.upload(x.length == 0 ? new short[1] : x, "x");
        FusedTransposeSplitQuantGpu.DeviceResult g = FusedTransposeSplitQuantGpu.quantize(alloc, dx, m, k, tpe, pow2)) {
      assertExperts(cpu, g, "bf16 m=" + m + " k=" + k);
    }
  }

  @ParameterizedTest(name = "fp8 m={0} k={1} experts={2} pow2={3}")
  @CsvSource({"256, 512, 3, false", "384, 300, 4, true", "128, 7, 1, false", "512, 7168, 6, true"})
  void fp8MatchesCpu(int m, int k, int experts, boolean pow2) {
    SplittableRandom rnd = new SplittableRandom(m * 11L + k);
    byte[] x = new byte[m * k];
    rnd.nextBytes(x);
    int sc = (k + 127) / 128;
    float[] scales = new float[m * sc];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = (float) ((rnd.nextBoolean() ? -1 : 1) * Math.pow(2, rnd.nextInt(-10, 4)) * (1 + rnd.nextDouble()));
    }
    int[] tpe = split(rnd, m, experts);
    FusedTransposeSplitQuant.Result cpu = FusedTransposeSplitQuant.quantizeFp8(x, scales, m, k, tpe, pow2);
    try (DeviceBuffer dx = alloc.upload(x, "x"); DeviceBuffer ds = alloc.upload(scales, "scales");
        FusedTransposeSplitQuantGpu.DeviceResult g = FusedTransposeSplitQuantGpu.quantizeFp8(alloc, dx, ds, m, k, tpe,
            pow2)) {
      assertExperts(cpu, g, "fp8 m=" + m + " k=" + k);
    }
  }

  /** Into an unaligned caller buffer (byte stores) on an explicit stream. */
  @Test
  void unalignedOutputView() {
    int m = 256;
    int k = 96;
    SplittableRandom rnd = new SplittableRandom(1);
    short[] x = bf16Data(rnd, m, k);
    int[] tpe = {128, 0, 128};
    FusedTransposeSplitQuant.Result cpu = FusedTransposeSplitQuant.quantize(x, m, k, tpe, false);
    try (DeviceBuffer dx = alloc.upload(x, "x"); DeviceBuffer big = alloc.allocate(3 + (long) m * k, "out");
        DeviceBuffer sc = alloc.allocate(4L * 2 * k, "scales")) {
      DeviceBuffer out = big.view(3, (long) m * k);
      FusedTransposeSplitQuantGpu.quantize(dx, m, k, tpe, false, out, sc, alloc.stream());
      byte[] all = out.toBytes(m * k);
      byte[] expected = new byte[m * k];
      System.arraycopy(cpu.outs()[0], 0, expected, 0, 128 * k);
      System.arraycopy(cpu.outs()[2], 0, expected, 128 * k, 128 * k);
      assertArrayEquals(expected, all, "concatenated outputs");
      float[] s = new float[2 * k];
      System.arraycopy(cpu.scales()[0], 0, s, 0, k);
      System.arraycopy(cpu.scales()[2], 0, s, k, k);
      Tolerance.assertBitEqual(sc.toFloats(2 * k), s, "scales");
    }
  }
}
