package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.formats.Fp4E2m1;
import org.moespark.formats.Mxfp;
import org.moespark.formats.Nvfp4;
import org.moespark.model.WeightTensor;
import org.moespark.testing.Tolerance;

/**
 * The CPU side of {@link GroupedGemmFp4} (no GPU needed): its dequantization is the formats' own
 * ({@link Mxfp}, {@link Nvfp4}) on the checkpoints' layouts, its reference is the plain product, the gate/up
 * row interleaving is the bf16 GEMM's, and bad arguments are rejected with the reason.
 */
class GroupedGemmFp4Test {
  @Test
  void dequantizeIsMxfpOnTheCheckpointLayout() {
    Random rnd = new Random(1);
    int rows = 5;
    int k = 96;
    float[] w = randn(rnd, rows * k);
    byte[] codes = new byte[rows * k / 2];
    byte[] scales = new byte[rows * k / 32];
    Mxfp.quantize(Mxfp.Kind.MXFP4, w, rows, k, codes, scales);
    float[] expected = new float[rows * k];
    Mxfp.dequantize(Mxfp.Kind.MXFP4, codes, scales, rows, k, expected);
    float[] got = GroupedGemmFp4.dequantize(WeightTensor.Format.MXFP4, codes, k / 2, scales, k / 32, rows, k);
    Tolerance.assertBitEqual(got, expected, "GroupedGemmFp4.dequantize vs Mxfp.dequantize");
  }

  @Test
  void dequantizeTimesTheGlobalScaleIsNvfp4() {
    Random rnd = new Random(2);
    int rows = 6;
    int k = 64;
    float[] w = randn(rnd, rows * k);
    byte[] codes = new byte[rows * k / 2];
    byte[] scales = new byte[rows * k / 16];
    float g = Nvfp4.quantize(w, rows, k, codes, scales);
    float[] expected = new float[rows * k];
    Nvfp4.dequantize(codes, scales, g, rows, k, expected);
    float[] got = GroupedGemmFp4.dequantize(WeightTensor.Format.NVFP4, codes, k / 2, scales, k / 16, rows, k);
    for (int i = 0; i < got.length; i++) {
      got[i] *= g;
    }
    Tolerance.assertBitEqual(got, expected, "GroupedGemmFp4.dequantize · weight_scale_2 vs Nvfp4.dequantize");
  }

  @Test
  void dequantizeReadsPaddedRows() {
    // ldb / lds larger than the row needs: the padding is skipped, not read as the next row
    int k = 32;
    byte[] codes = new byte[2 * 32];
    byte[] scales = new byte[2 * 4];
    codes[0] = Fp4E2m1.pack(Fp4E2m1.encode(1f), Fp4E2m1.encode(-6f)); // row 0: 1, -6, 0, ...
    codes[32] = Fp4E2m1.pack(Fp4E2m1.encode(0.5f), 0); // row 1: 0.5, 0, ...
    scales[0] = (byte) 128; // 2
    scales[4] = (byte) 125; // 1/4
    float[] w = GroupedGemmFp4.dequantize(WeightTensor.Format.MXFP4, codes, 32, scales, 4, 2, k);
    assertEquals(2f, w[0]);
    assertEquals(-12f, w[1]);
    assertEquals(0f, w[2]);
    assertEquals(0.125f, w[k]);
    assertEquals(0f, w[k + 1]);
  }

  @Test
  void referenceIsThePlainProductTimesTheColumnScale() {
    Random rnd = new Random(3);
    int[] off = {0, 3, 3, 7};
    int n = 5;
    int k = 32;
    byte[] codes = new byte[3 * n * k / 2];
    rnd.nextBytes(codes);
    byte[] scales = new byte[3 * n * k / 16];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = (byte) (0x20 + rnd.nextInt(24));
    }
    float[] a = randn(rnd, 7 * k);
    float[] cs = new float[3 * n];
    for (int i = 0; i < cs.length; i++) {
      cs[i] = 0.5f + rnd.nextFloat();
    }
    float[] w = GroupedGemmFp4.dequantize(WeightTensor.Format.NVFP4, codes, k / 2, scales, k / 16, 3 * n, k);
    float[] ref = GroupedGemmFp4.reference(a, k, off, WeightTensor.Format.NVFP4, codes, k / 2, scales, k / 16, cs, n,
        k);
    for (int e = 0; e < 3; e++) {
      for (int r = off[e]; r < off[e + 1]; r++) {
        for (int j = 0; j < n; j++) {
          double s = 0;
          for (int c = 0; c < k; c++) {
            s += (double) a[r * k + c] * w[(e * n + j) * k + c];
          }
          assertEquals((float) s * cs[e * n + j], ref[r * n + j], "row " + r + " column " + j);
        }
      }
    }
  }

  @Test
  void interleavesGateAndUpRowsLikeTheBf16Gemm() {
    int inter = 10;
    int width = 3;
    byte[] gate = new byte[inter * width];
    byte[] up = new byte[inter * width];
    for (int i = 0; i < gate.length; i++) {
      gate[i] = (byte) (i + 1);
      up[i] = (byte) (-i - 1);
    }
    byte[] out = GroupedGemmFp4.interleaveGateUpRows(gate, up, inter, width);
    assertEquals(2 * GroupedGemm.pad8(inter) * width, out.length);
    for (int i = 0; i < inter; i++) {
      int dst = GroupedGemm.interleavedRow(i);
      for (int c = 0; c < width; c++) {
        assertEquals(gate[i * width + c], out[dst * width + c], "gate row " + i);
        assertEquals(up[i * width + c], out[(dst + 8) * width + c], "up row " + i);
      }
    }
    for (int row = 2 * 8 + 2; row < 2 * 8 + 8; row++) { // gate rows 10..15 of block 1: padding
      for (int c = 0; c < width; c++) {
        assertEquals(0, out[row * width + c], "padding row " + row);
      }
    }
  }

  @Test
  void rejectsBadArgumentsWithTheReason() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GroupedGemmFp4.block(WeightTensor.Format.BF16));
    assertTrue(e.getMessage().contains("MXFP4 or NVFP4") && e.getMessage().contains("BF16"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> GroupedGemmFp4.dequantize(WeightTensor.Format.MXFP4, new byte[16], 8, new byte[1], 1, 1, 32));
    assertTrue(e.getMessage().contains("ldb >= k/2"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> GroupedGemmFp4.dequantize(WeightTensor.Format.NVFP4, new byte[16], 16, new byte[1], 2, 1, 32));
    assertTrue(e.getMessage().contains("scales must hold 2 values, got 1"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> GroupedGemmFp4.interleaveGateUpRows(new byte[3], new byte[4], 2, 2));
    assertTrue(e.getMessage().contains("gate must hold 4 values, got 3"), e.getMessage());
  }

  private static float[] randn(Random rnd, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }
}
