package org.moespark.layer;

import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.formats.Bf16;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/**
 * The layer's combine kernel on its own, bit for bit against the CPU layer's definition written out here: per token,
 * the slots in ascending expert id (stable), {@code acc += w·o[row]} in fp32 (or {@code bf16(acc + bf16(w·o))}), then
 * the shared expert's row. Hidden sizes that take the 16-byte path (one pass, several, a ragged last one: DeepSeek-V3's
 * 7168, GPT-OSS's 2880) and the scalar path, top-k up to 40 (past 32 one thread sorts the slots, not a warp),
 * fp32 and bf16 expert rows, expert rows in a random order. The gated shared expert (Qwen2-MoE: a block-reduced gate
 * and the device's expf) is covered by the layer tests within tolerance.
 */
@Tag("gpu")
class CombineGpuTest extends DeviceTest {
  @ParameterizedTest(name = "T={0} H={1} E={2} k={3} oBf16={4} bf16={5} shared={6}")
  @CsvSource({"300, 7168, 256, 8, true, true, true", "3000, 2048, 128, 8, true, true, false",
      "2500, 4096, 8, 2, false, false, false", "2000, 40, 64, 40, true, false, true", "700, 45, 16, 5, false, true, true",
      "1200, 2880, 128, 4, true, false, false"})
  void matchesTheCpuOrderBitForBit(int tokens, int hidden, int experts, int k, boolean oBf16, boolean bf16,
      boolean withShared) {
    Random rnd = new Random(tokens * 31L + hidden);
    int rows = tokens * k;
    int[] ids = new int[tokens * k];
    float[] w = new float[tokens * k];
    int[] rowmap = new int[tokens * experts];
    java.util.Arrays.fill(rowmap, -1);
    int[] perm = new int[rows];
    for (int i = 0; i < rows; i++) {
      perm[i] = i;
    }
    for (int i = rows - 1; i > 0; i--) { // the rows of the slots in a random order
      int j = rnd.nextInt(i + 1);
      int tmp = perm[i];
      perm[i] = perm[j];
      perm[j] = tmp;
    }
    for (int t = 0; t < tokens; t++) {
      boolean[] used = new boolean[experts];
      for (int j = 0; j < k; j++) {
        int e;
        do {
          e = rnd.nextInt(experts);
        } while (used[e]);
        used[e] = true;
        ids[t * k + j] = e;
        w[t * k + j] = (float) rnd.nextDouble();
        rowmap[t * experts + e] = perm[t * k + j];
      }
    }
    float[] o = new float[rows * hidden];
    for (int i = 0; i < o.length; i++) {
      o[i] = oBf16 ? Bf16.round((float) rnd.nextGaussian()) : (float) rnd.nextGaussian();
    }
    float[] sh = new float[withShared ? tokens * hidden : 0];
    for (int i = 0; i < sh.length; i++) {
      sh[i] = oBf16 ? Bf16.round((float) rnd.nextGaussian()) : (float) rnd.nextGaussian();
    }
    float[] expected = reference(tokens, hidden, experts, k, ids, w, rowmap, o, sh, bf16);
    try (DeviceBuffer dO = oBf16 ? alloc.upload(Naive.bf16Bits(o), "o") : alloc.upload(o, "o");
        DeviceBuffer dIds = alloc.upload(ids, "ids"); DeviceBuffer dW = alloc.upload(w, "w");
        DeviceBuffer dMap = alloc.upload(rowmap, "rowmap");
        DeviceBuffer dSh = withShared ? (oBf16 ? alloc.upload(Naive.bf16Bits(sh), "shared") : alloc.upload(sh, "shared"))
            : null;
        DeviceBuffer y = alloc.allocate(4L * tokens * hidden, "y")) {
      y.fill(0x7f, stream);
      MoeLayerGpu.combine(dO, hidden, oBf16, dIds, dW, dMap, k, experts, tokens, hidden, dSh, hidden, null, null, bf16,
          y, stream);
      Tolerance.assertBitEqual(y.toFloats(tokens * hidden), expected, "combine T=" + tokens + " H=" + hidden);
    }
  }

  private static float[] reference(int tokens, int hidden, int experts, int k, int[] ids, float[] w, int[] rowmap,
      float[] o, float[] sh, boolean bf16) {
    float[] y = new float[tokens * hidden];
    for (int t = 0; t < tokens; t++) {
      // the slots in ascending expert id, ties (none here) by slot
      Integer[] order = new Integer[k];
      for (int j = 0; j < k; j++) {
        order[j] = j;
      }
      final int tt = t;
      java.util.Arrays.sort(order, (p, q) -> Integer.compare(ids[tt * k + p], ids[tt * k + q]));
      for (int c = 0; c < hidden; c++) {
        float acc = 0f;
        for (int j = 0; j < k; j++) {
          int slot = order[j];
          int row = rowmap[t * experts + ids[t * k + slot]];
          float p = o[row * hidden + c] * w[t * k + slot];
          acc = bf16 ? Bf16.round(acc + Bf16.round(p)) : acc + p;
        }
        if (sh.length > 0) {
          float v = sh[t * hidden + c];
          acc = bf16 ? Bf16.round(acc + Bf16.round(v)) : acc + v;
        }
        y[t * hidden + c] = acc;
      }
    }
    return y;
  }
}
