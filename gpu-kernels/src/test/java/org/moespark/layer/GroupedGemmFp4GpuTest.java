package org.moespark.layer;

import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.formats.Bf16;
import org.moespark.formats.Mxfp;
import org.moespark.formats.Nvfp4;
import org.moespark.model.WeightTensor;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/**
 * The FP4-weight grouped GEMM ({@link GroupedGemmFp4}): bit for bit the bf16 grouped GEMM's wgmma variant 3 on
 * the dequantized weights (the in-kernel expansion is exact and the wgmma sequence the same), then
 * {@code · colScale}; within fp32 accumulation error of the CPU definition; every epilogue; deterministic;
 * and, with weights quantized by the real rules ({@link Mxfp}, {@link Nvfp4}), within FP4's error of the
 * unquantized product. Shapes: ragged and empty experts, more than one m-tile, K with a ragged last 64-wide
 * k-tile, N with a ragged last n-tile, more tiles than SMs. Outputs are poisoned before each run.
 */
@Tag("gpu")
class GroupedGemmFp4GpuTest extends DeviceTest {
  @ParameterizedTest(name = "variant {0} {1} K={2} N={3}")
  @Tag("wgmma") // its own JVM first on the GPU machine: a faulting kernel poisons the CUDA context
  @CsvSource({"1, MXFP4, 64, 256", "1, NVFP4, 64, 256", "1, MXFP4, 224, 144", "1, NVFP4, 224, 144",
      "1, MXFP4, 2880, 1536", "1, NVFP4, 1024, 2320", "1, MXFP4, 32, 130", "2, MXFP4, 64, 256", "2, NVFP4, 64, 256",
      "2, MXFP4, 224, 144", "2, NVFP4, 224, 144", "2, MXFP4, 2880, 1536", "2, NVFP4, 1024, 2320", "2, MXFP4, 32, 130",
      "2, NVFP4, 96, 8448"}) // the last: 132+ tiles of 128×256, so the persistent blocks each run several
  void bitForBitTheBf16GemmOnTheDequantizedWeights(int fp4Variant, WeightTensor.Format format, int k, int n) {
    Random rnd = new Random(k * 31L + n + format.ordinal());
    int[] off = Naive.offsets(1, 0, 300, 7, 0, 129, 128);
    int experts = off.length - 1;
    int rows = off[experts];
    int blk = GroupedGemmFp4.block(format);
    int ldb = ((k / 2) + 15) & ~15;
    int lds = k / blk + 3; // a padded scale row: the kernel must use lds, not k / block
    float[] a = new float[rows * k];
    for (int i = 0; i < a.length; i++) {
      a[i] = Bf16.round((float) rnd.nextGaussian());
    }
    byte[] codes = new byte[experts * n * ldb];
    rnd.nextBytes(codes);
    byte[] scales = new byte[experts * n * lds];
    for (int i = 0; i < scales.length; i++) {
      // MXFP4: 2^-9 .. 2^-2 (E8M0 118..125); NVFP4: positive finite E4M3 codes 0x18 .. 0x37 (0.0156 .. 0.94)
      scales[i] = (byte) (format == WeightTensor.Format.MXFP4 ? 118 + rnd.nextInt(8) : 0x18 + rnd.nextInt(32));
    }
    float[] colScale = null;
    if (format == WeightTensor.Format.NVFP4) {
      colScale = new float[experts * n];
      for (int i = 0; i < colScale.length; i++) {
        colScale[i] = (float) (0.05 + 0.1 * rnd.nextDouble());
      }
    }
    float[] bias = new float[experts * n];
    for (int i = 0; i < bias.length; i++) {
      bias[i] = Bf16.round((float) rnd.nextGaussian());
    }
    float[] w = GroupedGemmFp4.dequantize(format, codes, ldb, scales, lds, experts * n, k);
    float[] ref = GroupedGemmFp4.reference(a, k, off, format, codes, ldb, scales, lds, colScale, n, k);
    String what = "variant " + fp4Variant + " " + format + " K=" + k + " N=" + n;
    int before = GroupedGemm.variant();
    int beforeFp4 = GroupedGemmFp4.variant();
    GroupedGemmFp4.setVariant(fp4Variant);
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer dc = alloc.upload(codes, "codes");
        DeviceBuffer ds = alloc.upload(scales, "scales");
        DeviceBuffer dcs = colScale == null ? null : alloc.upload(colScale, "colScale");
        DeviceBuffer dw = alloc.upload(Naive.bf16Bits(w), "dequantized bf16 weights");
        DeviceBuffer dbias = alloc.upload(bias, "bias"); DeviceBuffer c = alloc.allocate(4L * rows * n, "c");
        DeviceBuffer c2 = alloc.allocate(4L * rows * n, "c2")) {
      // STORE_F32 vs the CPU definition
      c.fill(0x7f, stream);
      GroupedGemmFp4.gemm(alloc, da, k, off, format, dc, ldb, ds, lds, dcs, n, k, null,
          GroupedGemm.Epilogue.STORE_F32, false, null, c, n);
      float[] got = c.toFloats(rows * n);
      double err = Tolerance.relativeError(got, ref);
      System.out.printf("GroupedGemmFp4 %s: relative error vs the CPU definition %.3e%n", what, err);
      Tolerance.FP32.assertClose(got, ref, "FP4 grouped GEMM fp32 " + what);
      // deterministic
      c2.fill(0x7f, stream);
      GroupedGemmFp4.gemm(alloc, da, k, off, format, dc, ldb, ds, lds, dcs, n, k, null,
          GroupedGemm.Epilogue.STORE_F32, false, null, c2, n);
      Tolerance.assertBitEqual(c2.toFloats(rows * n), got, "FP4 grouped GEMM deterministic " + what);
      // the bf16 GEMM with the same wgmma sequence (FP4 variant 1: bf16 variant 3, m64n128; 2: 4, m64n256) on the
      // dequantized weights, then · colScale in fp32: the same bits
      GroupedGemm.setVariant(fp4Variant == 1 ? 3 : 4);
      c2.fill(0x7f, stream);
      GroupedGemm.gemm(alloc, da, k, off, dw, k, n, k, null, GroupedGemm.Epilogue.STORE_F32, false, null, c2, n);
      float[] bf = c2.toFloats(rows * n);
      if (colScale != null) {
        for (int e = 0; e < experts; e++) {
          for (int r = off[e]; r < off[e + 1]; r++) {
            for (int j = 0; j < n; j++) {
              bf[r * n + j] *= colScale[e * n + j];
            }
          }
        }
      }
      Tolerance.assertBitEqual(got, bf, "FP4 GEMM vs the bf16 GEMM on the dequantized weights " + what);
      // STORE_F32 + bias, STORE_BF16 (Compute.BF16 roundings)
      float[] refBias = ref.clone();
      for (int e = 0; e < experts; e++) {
        for (int r = off[e]; r < off[e + 1]; r++) {
          for (int j = 0; j < n; j++) {
            refBias[r * n + j] += bias[e * n + j];
          }
        }
      }
      c.fill(0x7f, stream);
      GroupedGemmFp4.gemm(alloc, da, k, off, format, dc, ldb, ds, lds, dcs, n, k, dbias,
          GroupedGemm.Epilogue.STORE_F32, false, null, c, n);
      Tolerance.FP32.assertClose(c.toFloats(rows * n), refBias, "FP4 grouped GEMM + bias " + what);
      c.fill(0x7f, stream);
      GroupedGemmFp4.gemm(alloc, da, k, off, format, dc, ldb, ds, lds, dcs, n, k, null,
          GroupedGemm.Epilogue.STORE_BF16, true, null, c, n);
      float[] expBf16 = new float[ref.length];
      for (int i = 0; i < ref.length; i++) {
        expBf16[i] = Bf16.round(ref[i]);
      }
      Tolerance.BF16.assertClose(Naive.bf16Values(c.toShorts(rows * n)), expBf16, "FP4 grouped GEMM bf16 out " + what);
      if (n % 16 == 0) {
        // SWIGLU with the GPT-OSS activation and the bias (fp32 path), vs the CPU definition
        GatedActivation act = GatedActivation.GPT_OSS;
        c.fill(0x7f, stream);
        GroupedGemmFp4.gemm(alloc, da, k, off, format, dc, ldb, ds, lds, dcs, n, k, dbias,
            GroupedGemm.Epilogue.SWIGLU, false, act, c, n / 2);
        float[] gotAct = Naive.bf16Values(c.toShorts(rows * n / 2));
        float[] expAct = new float[rows * n / 2];
        for (int e = 0; e < experts; e++) {
          for (int r = off[e]; r < off[e + 1]; r++) {
            for (int i = 0; i < n / 2; i++) {
              int gr = GroupedGemm.interleavedRow(i);
              expAct[r * (n / 2) + i] = Bf16.round(act.apply(refBias[r * n + gr], refBias[r * n + gr + 8]));
            }
          }
        }
        Tolerance.BF16.assertClose(gotAct, expAct, "FP4 grouped GEMM SwiGLU epilogue " + what);
      }
    } finally {
      GroupedGemm.setVariant(before);
      GroupedGemmFp4.setVariant(beforeFp4);
    }
  }

  @ParameterizedTest(name = "{0} K={1}")
  @Tag("wgmma")
  @CsvSource({"MXFP4, 2880", "NVFP4, 2048"})
  void closeToTheUnquantizedProduct(WeightTensor.Format format, int k) {
    // weights quantized by the formats' own rules (the checkpoints' layouts): the FP4 error itself
    Random rnd = new Random(k + format.ordinal());
    int n = 384;
    int[] off = Naive.offsets(200, 0, 57);
    int experts = 3;
    int rows = off[experts];
    float[] a = new float[rows * k];
    for (int i = 0; i < a.length; i++) {
      a[i] = Bf16.round((float) rnd.nextGaussian());
    }
    float[] w = new float[experts * n * k];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() / Math.sqrt(k));
    }
    int blk = GroupedGemmFp4.block(format);
    byte[] codes = new byte[experts * n * k / 2];
    byte[] scales = new byte[experts * n * k / blk];
    float[] colScale = null;
    if (format == WeightTensor.Format.MXFP4) {
      Mxfp.quantize(Mxfp.Kind.MXFP4, w, experts * n, k, codes, scales);
    } else {
      // one tensor per expert, as a checkpoint stores them: each with its own weight_scale_2
      colScale = new float[experts * n];
      int per = n * k;
      for (int e = 0; e < experts; e++) {
        float[] we = java.util.Arrays.copyOfRange(w, e * per, (e + 1) * per);
        byte[] ce = new byte[per / 2];
        byte[] se = new byte[per / 16];
        float g = Nvfp4.quantize(we, n, k, ce, se);
        System.arraycopy(ce, 0, codes, e * per / 2, ce.length);
        System.arraycopy(se, 0, scales, e * per / 16, se.length);
        java.util.Arrays.fill(colScale, e * n, (e + 1) * n, g);
      }
    }
    float[] exact = new float[rows * n];
    for (int e = 0; e < experts; e++) {
      for (int r = off[e]; r < off[e + 1]; r++) {
        for (int j = 0; j < n; j++) {
          double s = 0;
          for (int c = 0; c < k; c++) {
            s += (double) a[r * k + c] * w[(e * n + j) * k + c];
          }
          exact[r * n + j] = (float) s;
        }
      }
    }
    try (DeviceBuffer da = alloc.upload(Naive.bf16Bits(a), "a"); DeviceBuffer dc = alloc.upload(codes, "codes");
        DeviceBuffer ds = alloc.upload(scales, "scales");
        DeviceBuffer dcs = colScale == null ? null : alloc.upload(colScale, "colScale");
        DeviceBuffer c = alloc.allocate(4L * rows * n, "c")) {
      c.fill(0x7f, stream);
      GroupedGemmFp4.gemm(alloc, da, k, off, format, dc, k / 2, ds, k / blk, dcs, n, k, null,
          GroupedGemm.Epilogue.STORE_F32, false, null, c, n);
      float[] got = c.toFloats(rows * n);
      double err = Tolerance.relativeError(got, exact);
      System.out.printf("GroupedGemmFp4 %s K=%d: relative error vs the unquantized product %.3e%n", format, k, err);
      Tolerance.FP4.assertClose(got, exact, format + " GEMM vs the unquantized product K=" + k);
    }
  }
}
