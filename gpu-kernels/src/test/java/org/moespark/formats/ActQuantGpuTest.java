package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/** The GPU 1x128 activation quantization against BlockFp8 (1x128 blocks), bit for bit. */
@Tag("gpu")
class ActQuantGpuTest extends DeviceTest {
  /** Values over many binades, some zero groups, some tiny groups (below DeepSeek's 1e-4 floor). */
  static float[] data(SplittableRandom rnd, int rows, int cols) {
    float[] x = new float[rows * cols];
    for (int r = 0; r < rows; r++) {
      int kind = rnd.nextInt(6);
      for (int c = 0; c < cols; c++) {
        float v = (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(-6, 7)));
        x[r * cols + c] = kind == 0 ? 0f : kind == 1 ? v * 1e-7f : v;
      }
    }
    return x;
  }

  private void check(BlockFp8.ScaleRule rule, ActQuantGpu.Input input, float[] x, int rows, int cols, boolean pow2) {
    float[] xr = x.clone();
    DeviceBuffer dx;
    if (input == ActQuantGpu.Input.BF16) {
      short[] h = new short[Math.max(1, x.length)];
      for (int i = 0; i < x.length; i++) {
        h[i] = Bf16.encode(x[i]);
        xr[i] = Bf16.decode(h[i]);
      }
      dx = alloc.upload(h, "x bf16");
    } else {
      dx = alloc.upload(x.length == 0 ? new float[1] : x, "x");
    }
    byte[] q = new byte[rows * cols];
    float[] s = new float[rows * (int) ActQuantGpu.scaleCols(cols)];
    BlockFp8.quantize(rule, xr, rows, cols, 1, BlockFp8.BLOCK, pow2, q, s);
    try (dx; ActQuantGpu.DeviceResult r = ActQuantGpu.quantize(alloc, rule, input, dx, rows, cols, pow2)) {
      String what = rule + " " + input + " [" + rows + ", " + cols + "] pow2=" + pow2;
      assertArrayEquals(q, q.length == 0 ? new byte[0] : r.q().toBytes(q.length), what + ": q");
      Tolerance.assertBitEqual(s.length == 0 ? new float[0] : r.scales().toFloats(s.length), s, what + ": scales");
    }
  }

  @ParameterizedTest(name = "[{0}, {1}] {2} {3} pow2={4}")
  @CsvSource({
      "0, 128, PADDLE, BF16, false", "1, 128, PADDLE, BF16, false", "7, 7168, DEEPSEEK, BF16, true",
      "7, 7168, DEEPSEEK, BF16, false", "33, 4096, PADDLE, BF16, true", "33, 4096, PADDLE, F32, false",
      "33, 2048, DEEPSEEK, F32, true", "17, 200, PADDLE, BF16, false",  // ragged last group, vector loads
      "17, 1223, DEEPSEEK, BF16, true", "13, 1583, PADDLE, F32, true",  // cols % 8 != 0: scalar path
      "5, 1, DEEPSEEK, F32, false", "1223, 136, PADDLE, BF16, true"})
  void matchesBlockFp8(int rows, int cols, BlockFp8.ScaleRule rule, ActQuantGpu.Input input, boolean pow2) {
    check(rule, input, data(new SplittableRandom(rows * 131L + cols), rows, cols), rows, cols, pow2);
  }

  /**
   * Every bf16 value in [-448, 448] — every e4m3 code, every tie between neighbouring codes, the subnormals
   * and zeros of both signs — reaches the e4m3 conversion unscaled: each 128-column group holds 448 (so the
   * DeepSeek scale is exactly 1 and x / s = x) and 127 of the values; the codes must be BlockFp8's bit for bit.
   */
  @Test
  void everyBf16ValueInRangeEncodesAsTheCpu() {
    java.util.List<Float> vals = new java.util.ArrayList<>();
    for (int bits = 0; bits < 0x10000; bits++) {
      float v = Bf16.decode((short) bits);
      if (!Float.isNaN(v) && Math.abs(v) <= 448f) {
        vals.add(v);
      }
    }
    int perGroup = 127;
    int rows = (vals.size() + perGroup - 1) / perGroup;
    int cols = 128;
    float[] x = new float[rows * cols];
    for (int r = 0; r < rows; r++) {
      x[r * cols] = 448f;
      for (int j = 0; j < perGroup; j++) {
        int i = r * perGroup + j;
        x[r * cols + 1 + j] = i < vals.size() ? vals.get(i) : 0f;
      }
    }
    check(BlockFp8.ScaleRule.DEEPSEEK, ActQuantGpu.Input.BF16, x, rows, cols, false);
    check(BlockFp8.ScaleRule.DEEPSEEK, ActQuantGpu.Input.F32, x, rows, cols, false);
  }

  /** inf gives scale 0 (Paddle): NaN at the inf, zeros elsewhere; NaN elements are ignored by amax. */
  @Test
  void infAndNanElements() {
    int cols = 256;
    float[] x = data(new SplittableRandom(9), 4, cols);
    x[5] = Float.POSITIVE_INFINITY;
    x[cols + 130] = Float.NaN;
    x[2 * cols + 7] = Float.NEGATIVE_INFINITY;
    for (BlockFp8.ScaleRule rule : BlockFp8.ScaleRule.values()) {
      check(rule, ActQuantGpu.Input.F32, x, 4, cols, false);
      check(rule, ActQuantGpu.Input.BF16, x, 4, cols, true);
    }
  }
}
