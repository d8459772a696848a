package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.FakeDeviceBuffers;
import org.moespark.formats.BlockFp8;
import org.moespark.formats.Fp8E4m3;

/** The FP8 grouped GEMM's CPU definition and argument checks (no GPU needed: the checks fire first). */
class GroupedGemmFp8Test {
  private static final DeviceBuffer BIG = FakeDeviceBuffers.of(1L << 30);

  private static void rejects(String fragment, Executable call) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
    assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
  }

  private static byte e4m3(float v) {
    byte c = Fp8E4m3.encodeSaturating(v);
    assertEquals(v, Fp8E4m3.decode(c), "test value must be exact in e4m3");
    return c;
  }

  @Test
  void unknownKernelVariantsAreRejected() {
    int before = GroupedGemmFp8.variant();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GroupedGemmFp8.setVariant(12));
    assertTrue(e.getMessage().contains("moespark.gemm.fp8.variant must be 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 or 11, got 12"),
        e.getMessage());
    assertEquals(before, GroupedGemmFp8.variant(), "unchanged after a rejected value");
    e = assertThrows(IllegalArgumentException.class, () -> KernelVariants.parse("p", " x ", 3));
    assertEquals("p must be 1, 2 or 3, got ' x '", e.getMessage());
    assertEquals(2, KernelVariants.parse("p", " 2 ", 3));
  }

  @Test
  void referenceByHandTwoScaleBlocks() {
    // one expert, one row, n = 1, k = 130: block 0 = columns 0..127, block 1 = 128..129 (ragged)
    int k = 130;
    byte[] a = new byte[k];
    byte[] b = new byte[k];
    java.util.Arrays.fill(a, e4m3(0f));
    java.util.Arrays.fill(b, e4m3(0f));
    a[0] = e4m3(2f);
    b[0] = e4m3(3f); // block 0: 6
    a[127] = e4m3(-0.5f);
    b[127] = e4m3(4f); // block 0: 6 - 2 = 4
    a[128] = e4m3(1.5f);
    b[128] = e4m3(2f); // block 1: 3
    a[129] = e4m3(1f);
    b[129] = e4m3(-1f); // block 1: 3 - 1 = 2
    float[] sa = {0.25f, 8f};
    float[] sb = {2f, 0.5f};
    float[] acc = GroupedGemmFp8.reference(a, k, sa, new int[] {0, 1}, b, k, sb, 1, k);
    // 4 · (0.25 · 2) + 2 · (8 · 0.5) = 2 + 8
    assertArrayEquals(new float[] {10f}, acc);
  }

  @Test
  void referenceMatchesDoubleLoopsOverDequantizedValues() {
    Random r = new Random(5);
    int[] off = {0, 3, 3, 8}; // an empty expert in the middle
    int experts = 3;
    int n = 130; // two weight scale blocks along n, the second ragged
    int k = 272; // three scale blocks along k, the last ragged
    int rows = off[experts];
    float[] x = new float[rows * k];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextGaussian() * (1 + i % 7));
    }
    float[] w = new float[experts * n * k];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() * 0.05);
    }
    byte[] qa = new byte[x.length];
    float[] sa = new float[rows * 3];
    BlockFp8.quantizeActivationsDeepSeek(x, rows, k, false, qa, sa);
    byte[] qb = new byte[w.length];
    float[] sb = new float[experts * 2 * 3];
    GroupedGemmFp8.quantizeWeights(w, experts, n, k, qb, sb);
    float[] got = GroupedGemmFp8.reference(qa, k, sa, off, qb, k, sb, n, k);
    double num = 0;
    double den = 0;
    for (int e = 0; e < experts; e++) {
      for (int row = off[e]; row < off[e + 1]; row++) {
        for (int j = 0; j < n; j++) {
          double s = 0;
          for (int c = 0; c < k; c++) {
            s += (double) Fp8E4m3.decode(qa[row * k + c]) * sa[row * 3 + c / 128]
                * Fp8E4m3.decode(qb[(e * n + j) * k + c]) * sb[(e * 2 + j / 128) * 3 + c / 128];
          }
          double d = got[row * n + j] - s;
          num += d * d;
          den += s * s;
        }
      }
    }
    assertTrue(den > 0, "random data must not be zero");
    assertTrue(Math.sqrt(num / den) < 1e-6, "fp32 reference vs double: " + Math.sqrt(num / den));
  }

  @Test
  void quantizeWeightsIsBlockFp8PerExpert() {
    Random r = new Random(9);
    int n = 136;
    int k = 144;
    float[] w = new float[2 * n * k];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) r.nextGaussian();
    }
    byte[] q = new byte[w.length];
    float[] s = new float[2 * 4];
    GroupedGemmFp8.quantizeWeights(w, 2, n, k, q, s);
    byte[] q1 = new byte[n * k];
    float[] s1 = new float[4];
    BlockFp8.quantizeWeights(java.util.Arrays.copyOfRange(w, n * k, 2 * n * k), n, k, false, q1, s1);
    assertArrayEquals(q1, java.util.Arrays.copyOfRange(q, n * k, 2 * n * k));
    assertArrayEquals(s1, java.util.Arrays.copyOfRange(s, 4, 8));
  }

  @Test
  void checksNameTheBadValue() {
    int[] off = {0, 10};
    GroupedGemm.Epilogue f32 = GroupedGemm.Epilogue.STORE_F32;
    rejects("k must be a positive multiple of 16 (16-byte e4m3 loads), got 136",
        () -> GroupedGemmFp8.gemm(null, BIG, 144, BIG, off, BIG, 144, BIG, 8, 136, null, f32, false, null, BIG, 8));
    rejects("lda must be >= k = 128 and a multiple of 16, got 136",
        () -> GroupedGemmFp8.gemm(null, BIG, 136, BIG, off, BIG, 128, BIG, 8, 128, null, f32, false, null, BIG, 8));
    rejects("ldb must be >= k = 128 and a multiple of 16, got 112",
        () -> GroupedGemmFp8.gemm(null, BIG, 128, BIG, off, BIG, 112, BIG, 8, 128, null, f32, false, null, BIG, 8));
    rejects("SWIGLU needs n (gate/up interleaved per 8) to be a multiple of 16, got 24",
        () -> GroupedGemmFp8.gemm(null, BIG, 128, BIG, off, BIG, 128, BIG, 24, 128, null,
            GroupedGemm.Epilogue.SWIGLU, false, GatedActivation.SWIGLU, BIG, 12));
    rejects("aScales [R=10, 2] fp32 needs 80 bytes, the device buffer has 40",
        () -> GroupedGemmFp8.gemm(null, BIG, 256, FakeDeviceBuffers.of(40), off, BIG, 256, BIG, 8, 256, null, f32,
            false, null, BIG, 8));
    rejects("bScales [E=1, 2, 1] fp32 needs 8 bytes",
        () -> GroupedGemmFp8.gemm(null, BIG, 128, BIG, off, BIG, 128, FakeDeviceBuffers.of(4), 130, 128, null, f32,
            false, null, BIG, 130));
    DeviceBuffer odd = FakeDeviceBuffers.of(1 << 20).view(8, 1 << 16);
    rejects("A [R=10, lda=128] e4m3 must be 16-byte aligned",
        () -> GroupedGemmFp8.gemm(null, odd, 128, BIG, off, BIG, 128, BIG, 8, 128, null, f32, false, null, BIG, 8));
    rejects("C [R=10, ldc=8] needs 320 bytes",
        () -> GroupedGemmFp8.gemm(null, BIG, 128, BIG, off, BIG, 128, BIG, 8, 128, null, f32, false, null,
            FakeDeviceBuffers.of(100), 8));
    rejects("alloc must not be null",
        () -> GroupedGemmFp8.gemm(null, BIG, 128, BIG, off, BIG, 128, BIG, 8, 128, null, f32, false, null, BIG, 8));
    rejects("need 1 <= k <= min(lda, ldb), got k = 5, lda = 4",
        () -> GroupedGemmFp8.reference(new byte[4], 4, new float[1], new int[] {0, 1}, new byte[4], 4, new float[1],
            1, 5));
    rejects("aScales must hold 2 values, got 1",
        () -> GroupedGemmFp8.reference(new byte[2 * 4], 4, new float[1], new int[] {0, 2}, new byte[4], 4,
            new float[1], 1, 4));
  }

  @Test
  void gemmPrecisionParsesThePropertyValues() {
    assertEquals(GemmPrecision.FP8, GemmPrecision.parse(" FP8 "));
    assertEquals(GemmPrecision.BF16, GemmPrecision.parse("bf16"));
    assertEquals(GemmPrecision.MXFP4, GemmPrecision.parse("mxfp4"));
    assertEquals(GemmPrecision.NVFP4, GemmPrecision.parse("NvFp4"));
    assertTrue(GemmPrecision.NVFP4.fp4() && GemmPrecision.MXFP4.fp4() && !GemmPrecision.FP8.fp4());
    rejects("moespark.gpu.gemm must be bf16, fp8, mxfp4 or nvfp4, got 'fp4'", () -> GemmPrecision.parse("fp4"));
  }
}
