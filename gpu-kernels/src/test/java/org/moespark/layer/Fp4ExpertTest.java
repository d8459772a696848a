package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.moespark.formats.Mxfp;
import org.moespark.formats.Nvfp4;
import org.moespark.model.WeightTensor;
import org.moespark.testing.Tolerance;

/**
 * {@link Fp4Expert}: the GroupedGemmFp4 operands it builds from checkpoint tensors dequantize (codes, scales,
 * per-row {@code weight_scale_2}) to exactly the checkpoint's dequantized weights in the GEMM's row order and
 * padding; {@link MoeBlockSpec} keeps them only when they match its experts.
 */
class Fp4ExpertTest {
  static WeightTensor tensor(WeightTensor.Format f, String name, float[] w, int rows, int cols) {
    byte[] codes = new byte[rows * cols / 2];
    if (f == WeightTensor.Format.MXFP4) {
      byte[] scales = new byte[rows * cols / 32];
      Mxfp.quantize(Mxfp.Kind.MXFP4, w, rows, cols, codes, scales);
      return WeightTensor.mxfp4(name, rows, cols, direct(codes), direct(scales));
    }
    byte[] scales = new byte[rows * cols / 16];
    float g = Nvfp4.quantize(w, rows, cols, codes, scales);
    return WeightTensor.nvfp4(name, rows, cols, direct(codes), direct(scales), g, Float.NaN);
  }

  private static ByteBuffer direct(byte[] b) {
    ByteBuffer d = ByteBuffer.allocateDirect(b.length).order(ByteOrder.LITTLE_ENDIAN);
    d.put(b).flip();
    return d.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  private static float[] randn(Random r, int n, double scale) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) (r.nextGaussian() * scale);
    }
    return x;
  }

  @ParameterizedTest(name = "{0} I={1} H={2} ip={3}")
  @CsvSource({"NVFP4, 48, 64, 64", "NVFP4, 208, 32, 224", "MXFP4, 64, 96, 64", "MXFP4, 96, 64, 128"})
  void layoutDequantizesToTheCheckpointWeightsInTheGemmOrder(WeightTensor.Format f, int inter, int h, int ip) {
    Random r = new Random(inter * 7L + h);
    WeightTensor gate = tensor(f, "gate", randn(r, inter * h, 0.3), inter, h);
    WeightTensor up = tensor(f, "up", randn(r, inter * h, 3.0), inter, h); // a different weight_scale_2
    WeightTensor down = tensor(f, "down", randn(r, h * inter, 0.1), h, inter);
    float[] g = MoeBlockLoader.dequant(gate);
    float[] u = MoeBlockLoader.dequant(up);
    float[] d = MoeBlockLoader.dequant(down);
    Fp4Expert.Layout l = new Fp4Expert(gate, up, down).layout(ip);
    int blk = GroupedGemmFp4.block(f);
    float[] gu = GroupedGemmFp4.dequantize(f, l.guCodes(), h / 2, l.guScales(), h / blk, 2 * ip, h);
    float[] dn = GroupedGemmFp4.dequantize(f, l.dCodes(), ip / 2, l.dScales(), ip / blk, h, ip);
    if (f == WeightTensor.Format.NVFP4) {
      for (int row = 0; row < 2 * ip; row++) {
        for (int c = 0; c < h; c++) {
          gu[row * h + c] *= l.guCol()[row];
        }
      }
      for (int row = 0; row < h; row++) {
        for (int c = 0; c < ip; c++) {
          dn[row * ip + c] *= l.dCol()[row];
        }
      }
    } else {
      assertNull(l.guCol());
      assertNull(l.dCol());
    }
    float[] expGu = new float[2 * ip * h];
    for (int i = 0; i < inter; i++) {
      int row = GroupedGemm.interleavedRow(i);
      System.arraycopy(g, i * h, expGu, row * h, h);
      System.arraycopy(u, i * h, expGu, (row + 8) * h, h);
    }
    float[] expDn = new float[h * ip];
    for (int row = 0; row < h; row++) {
      System.arraycopy(d, row * inter, expDn, row * ip, inter);
    }
    Tolerance.assertBitEqual(gu, expGu, f + " gate/up operands vs the checkpoint's dequantized gate/up");
    Tolerance.assertBitEqual(dn, expDn, f + " down operands vs the checkpoint's dequantized down");
  }

  /**
   * The loader keeps the tensors of a GPT-OSS MXFP4 checkpoint (fused, interleaved {@code gate_up_proj} blocks,
   * split per expert by MoeBlockWeights) next to the dequantized weights, and their dequantization is those
   * weights bit for bit; a bf16 checkpoint has none.
   */
  @Test
  void loaderKeepsTheCheckpointFp4TensorsOfAnMxfp4Block(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
      throws Exception {
    int h = 64;
    int i = 32;
    int e = 3;
    org.moespark.model.MoeConfig cfg = org.moespark.model.MoeConfig.builder(org.moespark.model.MoeConfig.Family.GPT_OSS)
        .hiddenSize(h).numExperts(e).topK(2).expertIntermediateSize(i)
        .quantization(org.moespark.model.MoeConfig.Quantization.mxfp4(List.of())).build();
    Random r = new Random(9);
    byte[] guBlocks = new byte[e * 2 * i * h / 2];
    byte[] dBlocks = new byte[e * h * i / 2];
    r.nextBytes(guBlocks);
    r.nextBytes(dBlocks);
    byte[] guScales = new byte[e * 2 * i * (h / 32)];
    byte[] dScales = new byte[e * h * (i / 32)];
    for (int k = 0; k < guScales.length; k++) {
      guScales[k] = (byte) (118 + r.nextInt(8));
    }
    for (int k = 0; k < dScales.length; k++) {
      dScales[k] = (byte) (118 + r.nextInt(8));
    }
    String p = "model.layers.0.mlp.experts.";
    org.moespark.model.DType u8 = org.moespark.model.DType.U8;
    org.moespark.model.DType bf = org.moespark.model.DType.BF16;
    new org.moespark.model.SafeTensorsWriter()
        .addFloats("model.layers.0.mlp.router.weight", bf, new long[] {e, h}, randn(r, e * h, 0.1))
        .addFloats("model.layers.0.mlp.router.bias", bf, new long[] {e}, new float[e])
        .add(p + "gate_up_proj_blocks", u8, new long[] {e, 2 * i, h / 32, 16}, guBlocks)
        .add(p + "gate_up_proj_scales", u8, new long[] {e, 2 * i, h / 32}, guScales)
        .add(p + "down_proj_blocks", u8, new long[] {e, h, i / 32, 16}, dBlocks)
        .add(p + "down_proj_scales", u8, new long[] {e, h, i / 32}, dScales)
        .addFloats(p + "gate_up_proj_bias", bf, new long[] {e, 2 * i}, new float[e * 2 * i])
        .addFloats(p + "down_proj_bias", bf, new long[] {e, h}, new float[e * h])
        .write(dir.resolve("model.safetensors"));
    cfg.write(dir);
    MoeBlockSpec s = MoeBlockLoader.load(dir, 0);
    assertEquals(e, s.fp4Experts().size());
    for (int x = 0; x < e; x++) {
      Fp4Expert q = s.fp4Experts().get(x);
      ExpertWeights w = s.experts().get(x);
      assertEquals(WeightTensor.Format.MXFP4, q.format());
      Tolerance.assertBitEqual(MoeBlockLoader.dequant(q.gate()), w.gate(), "expert " + x + " gate");
      Tolerance.assertBitEqual(MoeBlockLoader.dequant(q.up()), w.up(), "expert " + x + " up");
      Tolerance.assertBitEqual(MoeBlockLoader.dequant(q.down()), w.down(), "expert " + x + " down");
    }
    assertNull(MoeBlockLoader.load(HfReferenceTest.ROOT.resolve("gpt_oss_bf16"), 0).fp4Experts(),
        "a bf16 checkpoint keeps no FP4 tensors");
  }

  @Test
  void specKeepsMatchingFp4ExpertsAndRejectsOthers() {
    Random r = new Random(3);
    int h = 32;
    int inter = 32;
    MoeBlockSpec base = MoeLayerTest.family("mixtral", 3);
    int e = base.experts().size();
    List<Fp4Expert> qs = new java.util.ArrayList<>();
    List<ExpertWeights> ws = new java.util.ArrayList<>();
    for (int i = 0; i < e; i++) {
      WeightTensor gt = tensor(WeightTensor.Format.NVFP4, "g" + i, randn(r, inter * h, 0.3), inter, h);
      WeightTensor ut = tensor(WeightTensor.Format.NVFP4, "u" + i, randn(r, inter * h, 0.3), inter, h);
      WeightTensor dt = tensor(WeightTensor.Format.NVFP4, "d" + i, randn(r, h * inter, 0.3), h, inter);
      qs.add(new Fp4Expert(gt, ut, dt));
      ws.add(ExpertWeights.of(h, inter, MoeBlockLoader.dequant(gt), MoeBlockLoader.dequant(ut),
          MoeBlockLoader.dequant(dt)));
    }
    MoeBlockSpec s = new MoeBlockSpec("mixtral", base.router(), ws, base.activation(), null, null, qs);
    assertEquals(e, s.fp4Experts().size());
    assertSame(null, s.withoutFp4().fp4Experts());
    IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
        () -> new MoeBlockSpec("mixtral", base.router(), ws, base.activation(), null, null, qs.subList(0, 1)));
    assertTrue(ex.getMessage().contains("fp4Experts has 1 experts"), ex.getMessage());
    WeightTensor mx = tensor(WeightTensor.Format.MXFP4, "mx", randn(r, inter * h, 0.3), inter, h);
    ex = assertThrows(IllegalArgumentException.class, () -> new Fp4Expert(mx, qs.get(0).up(), qs.get(0).down()));
    assertTrue(ex.getMessage().contains("is MXFP4 but up 'u0' is NVFP4"), ex.getMessage());
    ex = assertThrows(IllegalArgumentException.class, () -> qs.get(0).layout(40));
    assertTrue(ex.getMessage().contains("ip must be >= 32 and a multiple of 32, got 40"), ex.getMessage());
  }
}
