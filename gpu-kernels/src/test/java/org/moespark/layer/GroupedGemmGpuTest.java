package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.formats.Bf16;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/**
 * The grouped GEMM against a naive double-precision reference written here, on bf16 values (so the
 * products are exact and only the fp32 summation order differs): odd expert sizes (0 and 1 rows,
 * more than one m-tile), K and N not multiples of the tiles, the element-wise and the cp.async load
 * paths, every epilogue.
 */
@Tag("gpu")
class GroupedGemmGpuTest extends DeviceTest {
  /** bf16-representable random values. */
  private static float[] bf16Randn(Random r, int n, double std) {
    float[] a = new float[n];
    for (int i = 0; i < n; i++) {
      a[i] = Bf16.round((float) (r.nextGaussian() * std));
    }
    return a;
  }

  /** Naive: acc[r][j] = Σ_c a[r][c]·b[e][j][c] in double. */
  private static double[] naive(float[] a, int lda, int[] offsets, float[] b, int ldb, int n, int k) {
    int rows = offsets[offsets.length - 1];
    double[] c = new double[rows * n];
    for (int e = 0; e + 1 < offsets.length; e++) {
      for (int r = offsets[e]; r < offsets[e + 1]; r++) {
        for (int j = 0; j < n; j++) {
          double s = 0;
          for (int q = 0; q < k; q++) {
            s += (double) a[r * lda + q] * b[(e * n + j) * ldb + q];
          }
          c[r * n + j] = s;
        }
      }
    }
    return c;
  }

  @ParameterizedTest(name = "K={0} N={1} lda={2}")
  @CsvSource({
      "45, 130, 45",   // K, N not multiples of anything: element-wise loads
      "200, 136, 200", // K multiple of 8, not of 32: cp.async path with a ragged last k-tile
      "64, 8, 72",     // lda > k, a single narrow n-tile
      "1, 3, 1"})      // K = 1
  void storeF32MatchesTheNaiveReference(int k, int n, int lda) {
    Random rnd = new Random(k * 31L + n);
    int[] off = Naive.offsets(0, 1, 300, 7, 0, 129, 128);
    int rows = off[off.length - 1];
    int experts = off.length - 1;
    int ldb = k;
    float[] a = bf16Randn(rnd, rows * lda, 1.0);
    float[] b = bf16Randn(rnd, experts * n * ldb, 0.5);
    float[] bias = bf16Randn(rnd, experts * n, 1.0);
    double[] ref = naive(a, lda, off, b, ldb, n, k);
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer db = alloc.upload(Naive.bf16Bits(b), "b");
        DeviceBuffer dbias = alloc.upload(bias, "bias"); DeviceBuffer c = alloc.allocate(4L * rows * n, "c");
        DeviceBuffer c2 = alloc.allocate(4L * rows * n, "c2")) {
      GroupedGemm.gemm(alloc, da, lda, off, db, ldb, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null, c, n);
      float[] got = c.toFloats(rows * n);
      Tolerance.FP32.assertClose(got, Naive.toFloat(ref), "grouped GEMM fp32 K=" + k + " N=" + n);
      // same call again: same bits (no order-dependent reductions)
      GroupedGemm.gemm(alloc, da, lda, off, db, ldb, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null, c2, n);
      Tolerance.assertBitEqual(c2.toFloats(rows * n), got, "deterministic");
      // with a bias
      GroupedGemm.gemm(alloc, da, lda, off, db, ldb, n, k, dbias, GroupedGemm.Epilogue.STORE_F32, false, null, c, n);
      double[] refBias = ref.clone();
      for (int e = 0; e < experts; e++) {
        for (int r = off[e]; r < off[e + 1]; r++) {
          for (int j = 0; j < n; j++) {
            refBias[r * n + j] += bias[e * n + j];
          }
        }
      }
      Tolerance.FP32.assertClose(c.toFloats(rows * n), Naive.toFloat(refBias), "grouped GEMM fp32 + bias");
    }
  }

  @Test
  void bothKernelVariantsGiveTheSameBits() {
    Random rnd = new Random(17);
    int k = 136;
    int n = 272; // SWIGLU: 2·136
    int[] off = Naive.offsets(1, 0, 257, 64);
    int rows = off[4];
    float[] a = bf16Randn(rnd, rows * k, 1.0);
    float[] b = bf16Randn(rnd, 4 * n * k, 0.3);
    int before = GroupedGemm.variant();
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer db = alloc.upload(Naive.bf16Bits(b), "b");
        DeviceBuffer c = alloc.allocate(4L * rows * n, "c")) {
      for (GroupedGemm.Epilogue ep : GroupedGemm.Epilogue.values()) {
        GatedActivation act = ep == GroupedGemm.Epilogue.SWIGLU ? GatedActivation.GPT_OSS : null;
        long ldc = ep == GroupedGemm.Epilogue.SWIGLU ? n / 2 : n;
        float[][] got = new float[2][];
        for (int v = 1; v <= 2; v++) {
          GroupedGemm.setVariant(v);
          c.fill(0, stream);
          GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, null, ep, true, act, c, ldc);
          got[v - 1] = c.toFloats(rows * n);
        }
        Tolerance.assertBitEqual(got[1], got[0], "variant 2 vs variant 1, " + ep);
      }
      GroupedGemm.setVariant(2);
      GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null, c, n);
      Tolerance.FP32.assertClose(c.toFloats(rows * n), Naive.toFloat(naive(a, k, off, b, k, n, k)), "variant 2 fp32");
    } finally {
      GroupedGemm.setVariant(before);
    }
  }

  /**
   * The wgmma kernels (variant 3: cp.async ring; variant 4: TMA + warp-specialized, persistent) against
   * the naive reference for every epilogue, on shapes that take their path (K, lda multiples of 8; K not a
   * multiple of the 64-wide k-tile; N not a multiple of the 128/256-wide n-tile; ragged and empty experts;
   * the last shape has more tiles than the H100 has SMs, so variant 4's blocks each run several tiles).
   */
  @ParameterizedTest(name = "variant {0} K={1} N={2}")
  @Tag("wgmma") // run in its own JVM first on the GPU machine: a faulting kernel poisons the CUDA context
  @CsvSource({"3, 200, 144", "3, 64, 384", "3, 4096, 256", "4, 200, 144", "4, 64, 384", "4, 4096, 256",
      "4, 136, 1040", "3, 136, 1040", "6, 200, 144", "6, 136, 1040"})
  void wgmmaVariantMatchesTheNaiveReference(int variant, int k, int n) {
    Random rnd = new Random(k + 7L * n);
    int[] off = n > 1000 ? Naive.offsets(700, 0, 257, 64, 130, 1, 900, 333, 0, 1280)
        : Naive.offsets(1, 0, 257, 64, 130);
    int rows = off[off.length - 1];
    int experts = off.length - 1;
    float[] a = bf16Randn(rnd, rows * k, 1.0);
    float[] b = bf16Randn(rnd, experts * n * k, 1.0 / Math.sqrt(k));
    float[] bias = bf16Randn(rnd, experts * n, 1.0);
    double[] ref = naive(a, k, off, b, k, n, k);
    int before = GroupedGemm.variant();
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer db = alloc.upload(Naive.bf16Bits(b), "b");
        DeviceBuffer dbias = alloc.upload(bias, "bias"); DeviceBuffer c = alloc.allocate(4L * rows * n, "c");
        DeviceBuffer c1 = alloc.allocate(4L * rows * n, "c1")) {
      GroupedGemm.setVariant(variant);
      GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null, c, n);
      float[] got = c.toFloats(rows * n);
      Tolerance.FP32.assertClose(got, Naive.toFloat(ref), "wgmma fp32 K=" + k + " N=" + n);
      GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null, c1, n);
      Tolerance.assertBitEqual(c1.toFloats(rows * n), got, "wgmma deterministic");
      // SwiGLU epilogue (n = 2·Ip with the interleaved layout is just a B with n rows here) vs variant 1
      float[][] act = new float[2][];
      for (int v : new int[] {1, variant}) {
        GroupedGemm.setVariant(v);
        c.fill(0, stream);
        GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, dbias, GroupedGemm.Epilogue.SWIGLU, true,
            GatedActivation.GPT_OSS, c, n / 2);
        act[v == 1 ? 0 : 1] = Naive.bf16Values(c.toShorts(rows * n / 2));
      }
      Tolerance.BF16.assertClose(act[1], act[0], "wgmma v" + variant + " SwiGLU vs variant 1");
    } finally {
      GroupedGemm.setVariant(before);
    }
  }

  /**
   * The fragment epilogue (plain SwiGLU, bias-free stores: straight from the accumulators, hardware bf16
   * rounding, MUFU logistic) against the staged one, forced by a zero bias on the same GEMM: the stores give
   * the same bits; SwiGLU differs only where the approximate logistic moves a value across a bf16 rounding
   * boundary (one ulp, rare). Variant 4 (128×256 tiles) with a ragged last tile and expert segments.
   */
  @ParameterizedTest(name = "roundBf16={0}")
  @Tag("wgmma")
  @CsvSource({"false", "true"})
  void fragmentEpilogueAgreesWithTheStagedOne(boolean roundBf16) {
    Random rnd = new Random(roundBf16 ? 41 : 43);
    int k = 192;
    int n = 528; // 2·264: the last 256-column tile is ragged
    int[] off = Naive.offsets(1, 0, 300, 129, 64);
    int rows = off[off.length - 1];
    int experts = off.length - 1;
    float[] a = bf16Randn(rnd, rows * k, 1.0);
    float[] b = bf16Randn(rnd, experts * n * k, 2.0 / Math.sqrt(k));
    int before = GroupedGemm.variant();
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer db = alloc.upload(Naive.bf16Bits(b), "b");
        DeviceBuffer zero = alloc.upload(new float[experts * n], "zero bias");
        DeviceBuffer c = alloc.allocate(4L * rows * n, "c"); DeviceBuffer cs = alloc.allocate(4L * rows * n, "cs")) {
      GroupedGemm.setVariant(4);
      for (GroupedGemm.Epilogue ep : GroupedGemm.Epilogue.values()) {
        GatedActivation act = ep == GroupedGemm.Epilogue.SWIGLU ? GatedActivation.SWIGLU : null;
        long ldc = ep == GroupedGemm.Epilogue.SWIGLU ? n / 2 : n;
        long words = ep == GroupedGemm.Epilogue.STORE_F32 ? rows * ldc : rows * ldc / 2;
        c.fill(0x7f, stream);
        cs.fill(0x7f, stream);
        GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, null, ep, roundBf16, act, c, ldc);
        GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, zero, ep, roundBf16, act, cs, ldc);
        float[] fast = c.toFloats((int) words);
        float[] staged = cs.toFloats((int) words);
        if (ep != GroupedGemm.Epilogue.SWIGLU) {
          Tolerance.assertBitEqual(fast, staged, ep + " fragment vs staged epilogue");
          continue;
        }
        short[] fb = c.toShorts((int) (rows * ldc));
        short[] sb = cs.toShorts((int) (rows * ldc));
        int differ = 0;
        for (int i = 0; i < fb.length; i++) {
          if (fb[i] != sb[i]) {
            differ++;
            assertTrue(Math.abs(fb[i] - sb[i]) == 1, "SwiGLU element " + i + ": fragment " + fb[i] + " vs staged "
                + sb[i] + " differ by more than one bf16 ulp");
          }
        }
        System.out.printf("fragment vs staged SwiGLU epilogue (roundBf16=%b): %d of %d bf16 outputs differ by one ulp%n",
            roundBf16, differ, fb.length);
        assertTrue(differ <= fb.length / 100, differ + " of " + fb.length + " SwiGLU outputs differ (> 1%)");
      }
    } finally {
      GroupedGemm.setVariant(before);
    }
  }

  /**
   * The TMA-store epilogues (variant 4, the default, and 7: a consumer warp stages its 16 bf16 rows in shared memory
   * and the copy engine writes them, when all 16 lie inside the expert's segment; the fragment stores otherwise) give
   * the bits of variant 6 (every output stored from the fragments) for plain STORE_BF16 and SwiGLU: segments of
   * every size around the 16-row warp strips and 128-row tiles, a ragged last n-tile, an output row stride wider
   * than the columns (the gap must stay untouched), more tiles than SMs (each warp's earlier stores still in flight
   * when it stages the next tile), and a row stride that is not a multiple of 8 (no tensor map: the fragment path).
   */
  @ParameterizedTest(name = "variant {0} roundBf16={1}")
  @Tag("wgmma")
  @CsvSource({"4, true", "4, false", "7, true", "7, false", "8, true", "8, false"})
  void tmaStoreEpilogueGivesTheFragmentEpiloguesBits(int variant, boolean roundBf16) {
    Random rnd = new Random(variant * 31L + (roundBf16 ? 1 : 0));
    int k = 192;
    int n = 528; // 2·264: the last 256-column tile is ragged
    int[] off = Naive.offsets(1, 0, 15, 16, 17, 63, 64, 65, 127, 128, 129, 300, 700, 1000, 2000, 48, 3000);
    int rows = off[off.length - 1];
    int experts = off.length - 1;
    float[] a = bf16Randn(rnd, rows * k, 1.0);
    float[] b = bf16Randn(rnd, experts * n * k, 2.0 / Math.sqrt(k));
    int before = GroupedGemm.variant();
    // (epilogue, output columns, row stride): a gap after the columns; SwiGLU with a stride that is not a multiple of 8
    Object[][] cases = {{GroupedGemm.Epilogue.STORE_BF16, n, n}, {GroupedGemm.Epilogue.STORE_BF16, n, n + 24},
        {GroupedGemm.Epilogue.SWIGLU, n / 2, n / 2}, {GroupedGemm.Epilogue.SWIGLU, n / 2, n / 2 + 8},
        {GroupedGemm.Epilogue.SWIGLU, n / 2, n / 2 + 2}};
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer db = alloc.upload(Naive.bf16Bits(b), "b");
        DeviceBuffer c4 = alloc.allocate(2L * rows * (n + 24), "c4");
        DeviceBuffer cv = alloc.allocate(2L * rows * (n + 24), "cv")) {
      for (Object[] cs : cases) {
        GroupedGemm.Epilogue ep = (GroupedGemm.Epilogue) cs[0];
        long ldc = (int) cs[2];
        GatedActivation act = ep == GroupedGemm.Epilogue.SWIGLU ? GatedActivation.SWIGLU : null;
        short[][] got = new short[2][];
        for (int i = 0; i < 2; i++) {
          DeviceBuffer c = i == 0 ? c4 : cv;
          c.fill(0x7f, stream);
          GroupedGemm.setVariant(i == 0 ? 6 : variant);
          GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, null, ep, roundBf16, act, c, ldc);
          got[i] = c.toShorts((int) (rows * ldc));
        }
        Tolerance.assertBitEqualRows(got[1], got[0], ldc, (int) cs[1], (short) 0x7f7f,
            "variant " + variant + " vs variant 6, " + ep + " ldc " + ldc);
      }
    } finally {
      GroupedGemm.setVariant(before);
    }
  }

  @Test
  void storeBf16RoundsTheAccumulator() {
    Random rnd = new Random(3);
    int k = 96;
    int n = 40;
    int[] off = Naive.offsets(5, 0, 131);
    int rows = off[3];
    float[] a = bf16Randn(rnd, rows * k, 1.0);
    float[] b = bf16Randn(rnd, 3 * n * k, 0.3);
    double[] ref = naive(a, k, off, b, k, n, k);
    float[] exp = new float[ref.length];
    for (int i = 0; i < ref.length; i++) {
      exp[i] = Bf16.round((float) ref[i]);
    }
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer db = alloc.upload(Naive.bf16Bits(b), "b");
        DeviceBuffer c = alloc.allocate(2L * rows * n, "c")) {
      GroupedGemm.gemm(alloc, da, k, off, db, k, n, k, null, GroupedGemm.Epilogue.STORE_BF16, true, null, c, n);
      Tolerance.BF16.assertClose(Naive.bf16Values(c.toShorts(rows * n)), exp, "grouped GEMM bf16 out");
    }
  }

  @ParameterizedTest(name = "inter={0} hidden={1} gptOss={2}")
  @CsvSource({"24, 32, false", "11, 45, false", "40, 64, true", "136, 24, true"})
  void swigluEpilogueMatchesTheNaiveExpert(int inter, int hidden, boolean gptOss) {
    Random rnd = new Random(inter * 7L + hidden);
    int[] counts = {1, 0, 140, 3};
    int[] off = Naive.offsets(counts);
    int rows = off[4];
    int ip = GroupedGemm.pad8(inter);
    GatedActivation act = gptOss ? GatedActivation.GPT_OSS : GatedActivation.SWIGLU;
    float[] x = bf16Randn(rnd, rows * hidden, 1.0);
    short[] gu = new short[4 * 2 * ip * hidden];
    float[] biasAll = new float[4 * 2 * ip];
    float[][] gates = new float[4][];
    float[][] ups = new float[4][];
    float[][] gb = new float[4][];
    float[][] ub = new float[4][];
    for (int e = 0; e < 4; e++) {
      gates[e] = bf16Randn(rnd, inter * hidden, 0.4);
      ups[e] = bf16Randn(rnd, inter * hidden, 0.4);
      gb[e] = gptOss ? bf16Randn(rnd, inter, 0.5) : null;
      ub[e] = gptOss ? bf16Randn(rnd, inter, 0.5) : null;
      System.arraycopy(GroupedGemm.interleaveGateUp(gates[e], ups[e], inter, hidden), 0, gu, e * 2 * ip * hidden,
          2 * ip * hidden);
      System.arraycopy(GroupedGemm.interleaveBias(gb[e], ub[e], inter), 0, biasAll, e * 2 * ip, 2 * ip);
    }
    // naive expected activations (fp32 activation of double sums, padding columns 0)
    float[] exp = new float[rows * ip];
    for (int e = 0; e < 4; e++) {
      for (int r = off[e]; r < off[e + 1]; r++) {
        for (int i = 0; i < inter; i++) {
          double g = gb[e] == null ? 0 : gb[e][i];
          double u = ub[e] == null ? 0 : ub[e][i];
          for (int c = 0; c < hidden; c++) {
            g += (double) x[r * hidden + c] * gates[e][i * hidden + c];
            u += (double) x[r * hidden + c] * ups[e][i * hidden + c];
          }
          double gc = Math.min(g, act.limit());
          double uc = Math.max(-act.limit(), Math.min(u, act.limit()));
          exp[r * ip + i] = (float) (gc / (1 + Math.exp(-act.alpha() * gc)) * (uc + act.beta()));
        }
      }
    }
    try (DeviceBuffer dx = alloc.upload(Naive.bf16Bits(x), "x"); DeviceBuffer dw = alloc.upload(gu, "gate/up");
        DeviceBuffer db = alloc.upload(biasAll, "bias"); DeviceBuffer out = alloc.allocate(2L * rows * ip, "act")) {
      out.fill(0x7f, stream); // garbage: every column, padding included, must be written
      for (boolean roundBf16 : new boolean[] {false, true}) {
        GroupedGemm.gemm(alloc, dx, hidden, off, dw, hidden, 2 * ip, hidden, gptOss ? db : null,
            GroupedGemm.Epilogue.SWIGLU, roundBf16, act, out, ip);
        float[] got = Naive.bf16Values(out.toShorts(rows * ip));
        Tolerance.BF16.assertClose(got, exp, "SwiGLU epilogue inter=" + inter + " bf16=" + roundBf16);
        for (int r = 0; r < rows; r++) {
          for (int i = inter; i < ip; i++) {
            assertTrue(got[r * ip + i] == 0f, "padding column " + i + " of row " + r + " is " + got[r * ip + i]);
          }
        }
      }
    }
  }

  @Test
  void buffersTooSmallAreRejectedNamingTheTensor() {
    try (DeviceBuffer a = alloc.allocate(2 * 10 * 16, "a"); DeviceBuffer b = alloc.allocate(2 * 16 * 16, "b");
        DeviceBuffer c = alloc.allocate(4 * 10 * 15, "c")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.gemm(alloc, a, 16,
          new int[] {0, 10}, b, 16, 16, 16, null, GroupedGemm.Epilogue.STORE_F32, false, null, c, 16));
      assertTrue(e.getMessage().contains("C [R=10, ldc=16]") && e.getMessage().contains("640 bytes"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.gemm(alloc, a, 16, new int[] {0, 10}, b, 16,
          16, 17, null, GroupedGemm.Epilogue.STORE_F32, false, null, c, 16));
      assertTrue(e.getMessage().contains("lda must be >= k = 17, got 16"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.gemm(alloc, a, 16, new int[] {0, 10}, b, 16,
          12, 16, null, GroupedGemm.Epilogue.SWIGLU, false, GatedActivation.SWIGLU, c, 8));
      assertTrue(e.getMessage().contains("multiple of 16, got 12"), e.getMessage());
    }
  }
}
