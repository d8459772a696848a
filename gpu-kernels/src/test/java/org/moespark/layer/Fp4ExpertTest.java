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
