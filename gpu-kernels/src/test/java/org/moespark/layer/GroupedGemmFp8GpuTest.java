package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.formats.Bf16;
import org.moespark.formats.BlockFp8;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/**
 * The FP8 grouped GEMM against its CPU definition ({@link GroupedGemmFp8#reference}) on random data
 * (quantized with the real rules: DeepSeek 1×128 activations, 128×128 weight blocks): ragged expert sizes
 * with empty experts and more than one m-tile, K with a ragged last 128-block, N with a ragged last
 * n-tile, every epilogue; outputs poisoned before each run so that unwritten elements show.
 */
@Tag("gpu")
class GroupedGemmFp8GpuTest extends DeviceTest {
  @ParameterizedTest(name = "K={0} N={1}")
  @Tag("wgmma") // its own JVM first on the GPU machine: a faulting kernel poisons the CUDA context
  @CsvSource({"128, 256", "208, 144", "1040, 130", "4096, 384", "256, 2320"}) // the last: 152 tiles > 132 SMs
  void matchesTheCpuDefinitionForEveryEpilogue(int k, int n) {
    Random rnd = new Random(k * 131L + n);
    int[] off = Naive.offsets(1, 0, 300, 7, 0, 129, 128);
    int experts = off.length - 1;
    int rows = off[experts];
    int kb = GroupedGemmFp8.blocks(k);
    float[] x = new float[rows * k];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (rnd.nextGaussian() * (0.5 + (i / k) % 5)); // rows of different magnitudes
    }
    float[] w = new float[experts * n * k];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() / Math.sqrt(k) * (1 + (i / (128 * k)) % 3));
    }
    byte[] qa = new byte[x.length];
    float[] sa = new float[rows * kb];
    BlockFp8.quantizeActivationsDeepSeek(x, rows, k, false, qa, sa);
    byte[] qb = new byte[w.length];
    float[] sb = new float[experts * GroupedGemmFp8.blocks(n) * kb];
    GroupedGemmFp8.quantizeWeights(w, experts, n, k, qb, sb);
    float[] bias = new float[experts * n];
    for (int i = 0; i < bias.length; i++) {
      bias[i] = Bf16.round((float) rnd.nextGaussian());
    }
    float[] ref = GroupedGemmFp8.reference(qa, k, sa, off, qb, k, sb, n, k);
    int before = GroupedGemmFp8.variant();
    int[] variants = {1, 2, 3, 4, 5, 6, 11};
    float[][] perVariant = new float[variants.length][];
    try {
      for (int i = 0; i < variants.length; i++) {
        GroupedGemmFp8.setVariant(variants[i]);
        perVariant[i] = check(k, n, off, qa, sa, qb, sb, bias, ref, "variant " + variants[i]);
      }
    } finally {
      GroupedGemmFp8.setVariant(before);
    }
    Tolerance.assertBitEqual(perVariant[1], perVariant[0], "FP8 GEMM variant 2 vs variant 1");
    Tolerance.assertBitEqual(perVariant[2], perVariant[0], "FP8 GEMM variant 3 vs variant 1");
    Tolerance.assertBitEqual(perVariant[3], perVariant[0], "FP8 GEMM variant 4 (persistent) vs variant 1");
    Tolerance.assertBitEqual(perVariant[4], perVariant[0], "FP8 GEMM variant 5 (128x256 tiles) vs variant 1");
    Tolerance.assertBitEqual(perVariant[5], perVariant[0], "FP8 GEMM variant 6 (128x256 tiles, 4 stages) vs variant 1");
    Tolerance.assertBitEqual(perVariant[6], perVariant[0], "FP8 GEMM variant 11 (overlapped promotion) vs variant 1");
  }

  /**
   * Variant 5's TMA-store epilogue (a consumer warp stages its 16 bf16 rows in shared memory and the copy engine
   * writes them when all lie in the expert's segment; the fragment stores otherwise) gives variant 6's bits (every
   * output from the fragments) for plain STORE_BF16 and SwiGLU: segments of every size around the 16-row strips
   * and 128-row tiles, a ragged last n-tile, row strides wider than the columns (the gap stays untouched), more
   * tiles than SMs, a SwiGLU stride that is not a multiple of 8 (no tensor map).
   */
  @ParameterizedTest(name = "roundBf16={0}")
  @Tag("wgmma")
  @CsvSource({"true", "false"})
  void tmaStoreEpilogueGivesTheFragmentEpiloguesBits(boolean roundBf16) {
    Random rnd = new Random(roundBf16 ? 5 : 6);
    int k = 256;
    int n = 528;
    int[] off = Naive.offsets(1, 0, 15, 16, 17, 63, 64, 65, 127, 128, 129, 300, 700, 1000, 2000, 48, 3000);
    int experts = off.length - 1;
    int rows = off[experts];
    float[] x = new float[rows * k];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    float[] w = new float[experts * n * k];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() * 2 / Math.sqrt(k));
    }
    byte[] qa = new byte[x.length];
    float[] sa = new float[rows * GroupedGemmFp8.blocks(k)];
    BlockFp8.quantizeActivationsDeepSeek(x, rows, k, false, qa, sa);
    byte[] qb = new byte[w.length];
    float[] sb = new float[experts * GroupedGemmFp8.blocks(n) * GroupedGemmFp8.blocks(k)];
    GroupedGemmFp8.quantizeWeights(w, experts, n, k, qb, sb);
    Object[][] cases = {{GroupedGemm.Epilogue.STORE_BF16, n, n}, {GroupedGemm.Epilogue.STORE_BF16, n, n + 24},
        {GroupedGemm.Epilogue.SWIGLU, n / 2, n / 2}, {GroupedGemm.Epilogue.SWIGLU, n / 2, n / 2 + 8},
        {GroupedGemm.Epilogue.SWIGLU, n / 2, n / 2 + 2}};
    int before = GroupedGemmFp8.variant();
    try (DeviceBuffer da = alloc.upload(qa, "a"); DeviceBuffer dsa = alloc.upload(sa, "sa");
        DeviceBuffer db = alloc.upload(qb, "b"); DeviceBuffer dsb = alloc.upload(sb, "sb");
        DeviceBuffer c6 = alloc.allocate(2L * rows * (n + 24), "c6");
        DeviceBuffer c5 = alloc.allocate(2L * rows * (n + 24), "c5");
        DeviceBuffer c11 = alloc.allocate(2L * rows * (n + 24), "c11")) {
      for (Object[] cs : cases) {
        GroupedGemm.Epilogue ep = (GroupedGemm.Epilogue) cs[0];
        int cols = (int) cs[1];
        long ldc = (int) cs[2];
        GatedActivation act = ep == GroupedGemm.Epilogue.SWIGLU ? GatedActivation.SWIGLU : null;
        short[][] got = new short[3][];
        int[] variants = {6, 5, 11};
        for (int i = 0; i < 3; i++) {
          DeviceBuffer c = i == 0 ? c6 : i == 1 ? c5 : c11;
          c.fill(0x7f, stream);
          GroupedGemmFp8.setVariant(variants[i]);
          GroupedGemmFp8.gemm(alloc, da, k, dsa, off, db, k, dsb, n, k, null, ep, roundBf16, act, c, ldc);
          got[i] = c.toShorts((int) (rows * ldc));
        }
        Tolerance.assertBitEqualRows(got[1], got[0], ldc, cols, (short) 0x7f7f,
            "FP8 variant 5 vs variant 6, " + ep + " ldc " + ldc);
        Tolerance.assertBitEqualRows(got[2], got[0], ldc, cols, (short) 0x7f7f,
            "FP8 variant 11 vs variant 6, " + ep + " ldc " + ldc);
      }
    } finally {
      GroupedGemmFp8.setVariant(before);
    }
  }

  /** Every epilogue against the CPU definition with the current variant; returns the STORE_F32 output. */
  private float[] check(int k, int n, int[] off, byte[] qa, float[] sa, byte[] qb, float[] sb, float[] bias,
      float[] ref, String what) {
    int experts = off.length - 1;
    int rows = off[experts];
    try (DeviceBuffer da = alloc.upload(qa, "a"); DeviceBuffer dsa = alloc.upload(sa, "sa");
        DeviceBuffer db = alloc.upload(qb, "b"); DeviceBuffer dsb = alloc.upload(sb, "sb");
        DeviceBuffer dbias = alloc.upload(bias, "bias"); DeviceBuffer c = alloc.allocate(4L * rows * n, "c");
        DeviceBuffer c2 = alloc.allocate(4L * rows * n, "c2")) {
      // STORE_F32
      c.fill(0x7f, stream);
      GroupedGemmFp8.gemm(alloc, da, k, dsa, off, db, k, dsb, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null,
          c, n);
      float[] got = c.toFloats(rows * n);
      double err = Tolerance.relativeError(got, ref);
      System.out.printf("GroupedGemmFp8 %s K=%d N=%d: relative error vs the CPU definition %.3e%n", what, k, n, err);
      Tolerance.FP8_GEMM.assertClose(got, ref, "FP8 grouped GEMM fp32 K=" + k + " N=" + n);
      // deterministic
      c2.fill(0x7f, stream);
      GroupedGemmFp8.gemm(alloc, da, k, dsa, off, db, k, dsb, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null,
          c2, n);
      Tolerance.assertBitEqual(c2.toFloats(rows * n), got, "FP8 grouped GEMM deterministic");
      // STORE_F32 + bias
      GroupedGemmFp8.gemm(alloc, da, k, dsa, off, db, k, dsb, n, k, dbias, GroupedGemm.Epilogue.STORE_F32, false,
          null, c, n);
      float[] refBias = ref.clone();
      for (int e = 0; e < experts; e++) {
        for (int r = off[e]; r < off[e + 1]; r++) {
          for (int j = 0; j < n; j++) {
            refBias[r * n + j] += bias[e * n + j];
          }
        }
      }
      Tolerance.FP8_GEMM.assertClose(c.toFloats(rows * n), refBias, "FP8 grouped GEMM + bias");
      // STORE_BF16 (Compute.BF16 roundings)
      c.fill(0x7f, stream);
      GroupedGemmFp8.gemm(alloc, da, k, dsa, off, db, k, dsb, n, k, null, GroupedGemm.Epilogue.STORE_BF16, true, null,
          c, n);
      float[] expBf16 = new float[ref.length];
      for (int i = 0; i < ref.length; i++) {
        expBf16[i] = Bf16.round(ref[i]);
      }
      Tolerance.BF16.assertClose(Naive.bf16Values(c.toShorts(rows * n)), expBf16, "FP8 grouped GEMM bf16 out");
      if (n % 16 == 0) {
        // SWIGLU (B's rows read as gate/up interleaved per 8), GPT-OSS activation with the bias, fp32 path
        GatedActivation act = GatedActivation.GPT_OSS;
        c.fill(0x7f, stream);
        GroupedGemmFp8.gemm(alloc, da, k, dsa, off, db, k, dsb, n, k, dbias, GroupedGemm.Epilogue.SWIGLU, false, act,
            c, n / 2);
        float[] gotAct = Naive.bf16Values(c.toShorts(rows * n / 2));
        float[] expAct = new float[rows * n / 2];
        for (int e = 0; e < experts; e++) {
          for (int r = off[e]; r < off[e + 1]; r++) {
            for (int i = 0; i < n / 2; i++) {
              int gr = GroupedGemm.interleavedRow(i);
              float g = refBias[r * n + gr];
              float u = refBias[r * n + gr + 8];
              expAct[r * (n / 2) + i] = Bf16.round(act.apply(g, u));
            }
          }
        }
        Tolerance.BF16.assertClose(gotAct, expAct, "FP8 grouped GEMM SwiGLU epilogue");
      }
      return got;
    }
  }

  @ParameterizedTest(name = "K={0}")
  @Tag("wgmma")
  @CsvSource({"2048", "7168"})
  void closeToTheUnquantizedProduct(int k) {
    // the FP8 error itself (quantization, not accumulation) at model-like K: within Tolerance.FP8 of fp64
    Random rnd = new Random(k);
    int n = 256;
    int[] off = Naive.offsets(200, 0, 57);
    int rows = off[3];
    int kb = GroupedGemmFp8.blocks(k);
    float[] x = new float[rows * k];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    float[] w = new float[3 * n * k];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() / Math.sqrt(k));
    }
    byte[] qa = new byte[x.length];
    float[] sa = new float[rows * kb];
    BlockFp8.quantizeActivationsDeepSeek(x, rows, k, false, qa, sa);
    byte[] qb = new byte[w.length];
    float[] sb = new float[3 * 2 * kb];
    GroupedGemmFp8.quantizeWeights(w, 3, n, k, qb, sb);
    float[] exact = new float[rows * n];
    for (int e = 0; e < 3; e++) {
      for (int r = off[e]; r < off[e + 1]; r++) {
        for (int j = 0; j < n; j++) {
          double s = 0;
          for (int c = 0; c < k; c++) {
            s += (double) x[r * k + c] * w[(e * n + j) * k + c];
          }
          exact[r * n + j] = (float) s;
        }
      }
    }
    try (DeviceBuffer da = alloc.upload(qa, "a"); DeviceBuffer dsa = alloc.upload(sa, "sa");
        DeviceBuffer db = alloc.upload(qb, "b"); DeviceBuffer dsb = alloc.upload(sb, "sb");
        DeviceBuffer c = alloc.allocate(4L * rows * n, "c")) {
      GroupedGemmFp8.gemm(alloc, da, k, dsa, off, db, k, dsb, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null,
          c, n);
      float[] got = c.toFloats(rows * n);
      double err = Tolerance.relativeError(got, exact);
      System.out.printf("GroupedGemmFp8 K=%d: relative error vs the unquantized fp64 product %.3e%n", k, err);
      Tolerance.FP8.assertClose(got, exact, "FP8 GEMM vs fp64 of the unquantized inputs, K=" + k);
      assertTrue(err > 1e-4, "FP8 must differ from the unquantized product (else the test data is degenerate)");
    }
  }
}
