package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

class BlockFp8Test {
  @Test
  void quantScaleRules() {
    assertEquals(1f, BlockFp8.quantScale(0f, false), 0f, "amax 0 → 1");
    assertEquals(1f, BlockFp8.quantScale(0f, true), 0f);
    assertEquals(1f, BlockFp8.quantScale(448f, false), 0f);
    assertEquals(448f, BlockFp8.quantScale(1f, false), 0f);
    assertEquals(256f, BlockFp8.quantScale(1f, true), 0f, "pow2 floors the quant scale");
    assertEquals(128f, BlockFp8.quantScale(3.5f, true), 0f);
    assertEquals(0.5f, BlockFp8.quantScale(500f, true), 0f, "448/500 = 0.896 → 0.5");
    assertEquals(0x1.FEp127f, BlockFp8.quantScale(1e-39f, false), 0f, "overflowing scale → bf16 max");
    assertEquals(0x1p127f, BlockFp8.quantScale(1e-39f, true), 0f, "→ 2^127 with pow2");
    assertEquals(0f, BlockFp8.quantScale(Float.POSITIVE_INFINITY, false), 0f);
  }

  @Test
  void handComputedTiles() {
    // 2 x 4 with 1x2 tiles: row 0 = [1, -0.5 | 0, 0], row 1 = [600, 3 | -7, 0.001]
    float[] x = {1f, -0.5f, 0f, 0f, 600f, 3f, -7f, 0.001f};
    byte[] q = new byte[8];
    float[] sinv = new float[4];
    BlockFp8.quantize(x, 2, 4, 1, 2, false, q, sinv);
    // tile (0,0): s = 448 → 448 (0x7E), -224 (0xF6); stored 1/448
    assertEquals(0x7E, q[0]);
    assertEquals((byte) 0xF6, q[1]);
    assertEquals(1f / 448f, sinv[0], 0f);
    // tile (0,1): zeros → scale 1
    assertEquals(0, q[2]);
    assertEquals(0, q[3]);
    assertEquals(1f, sinv[1], 0f);
    // tile (1,0): s = 448/600 (fp32) = 0.74666667 → 600·s rounds to 448 (0x7E); 3·s = 2.24 → 2.25 (0x41)
    assertEquals(0x7E, q[4]);
    assertEquals(0x41, q[5]);
    assertEquals(1f / (448f / 600f), sinv[2], 0f);
    // tile (1,1): s = 64 → -448 (0xFE); 0.064 → 0.0625 = 2^-4 (0x18); stored 1/64
    assertEquals((byte) 0xFE, q[6]);
    assertEquals(0x18, q[7]);
    assertEquals(1f / 64f, sinv[3], 0f);
    // pow2: tile (1,0) quant scale 0.5 → 600·0.5 = 300 → 288 (0x79); stored 2
    BlockFp8.quantize(x, 2, 4, 1, 2, true, q, sinv);
    assertEquals(0x79, q[4]);
    assertEquals(2f, sinv[2], 0f);
    byte[] e8 = new byte[4];
    BlockFp8.scalesToE8m0(sinv, 0, e8, 0, 4);
    assertEquals(128, e8[2] & 0xFF);
  }

  @Test
  void deepSeekActivationRule() {
    assertEquals(1e-4f / 448f, BlockFp8.deepSeekScale(0f, false), 0f, "amax floored at 1e-4");
    assertEquals(1f, BlockFp8.deepSeekScale(448f, false), 0f);
    assertEquals(3f / 448f, BlockFp8.deepSeekScale(3f, false), 0f);
    assertEquals(0x1p-7f, BlockFp8.deepSeekScale(3f, true), 0f, "3/448 = 0.0067 → 2^-7 (rounded up)");
    assertEquals(1f, BlockFp8.deepSeekScale(448f, true), 0f, "exact power of two stays");
    assertEquals(2f, BlockFp8.deepSeekScale(449f, true), 0f);
    // one 1x128 group: [448, -3, 1, 0 ...] → s = 1, codes of the values themselves
    float[] x = new float[256];
    x[0] = 448f;
    x[1] = -3f;
    x[2] = 1f;
    x[128] = 0.5f;  // second group: s = 0.5/448, q = 0.5 / s = 448 (up to rounding) → 0x7E
    byte[] q = new byte[256];
    float[] s = new float[2];
    BlockFp8.quantizeActivationsDeepSeek(x, 1, 256, false, q, s);
    assertEquals(1f, s[0], 0f);
    assertEquals(0x7E, q[0]);
    assertEquals((byte) 0xC4, q[1]);
    assertEquals(0x38, q[2]);
    assertEquals(0.5f / 448f, s[1], 0f);
    assertEquals(0x7E, q[128]);
    BlockFp8.quantizeActivationsDeepSeek(x, 1, 256, true, q, s);
    assertEquals(0x1p-9f, s[1], 0f, "0.5/448 = 0.00112 → 2^-9");
    assertEquals(0x78, q[128], "0.5 / 2^-9 = 256 (0x78)");
  }

  @Test
  void infAndNaNElements() {
    float[] x = {Float.POSITIVE_INFINITY, 2f, Float.NaN, 1f};
    byte[] q = new byte[4];
    float[] sinv = new float[2];
    BlockFp8.quantize(x, 1, 4, 1, 2, false, q, sinv);
    assertTrue(Fp8E4m3.isNaN(q[0]), "inf·0 = NaN");
    assertEquals(0, q[1], "other elements 0");
    assertEquals(Float.POSITIVE_INFINITY, sinv[0], 0f);
    assertTrue(Fp8E4m3.isNaN(q[2]), "NaN element stays NaN");
    assertEquals(0x7E, q[3], "NaN ignored by amax: amax 1 → 448");
    float[] back = new float[4];
    BlockFp8.dequantize(q, sinv, 1, 4, 1, 2, back);
    assertEquals(0x7FC00000, Float.floatToRawIntBits(back[0]), "NaN code × inf scale → canonical NaN");
    assertEquals(0x7FC00000, Float.floatToRawIntBits(back[2]));
    assertEquals(1f / 448f, sinv[1], 0f);
  }

  /** Naive reference written from the spec formulas (Paddle §4.2 / §15b, DeepSeek act_quant) with grid rounding. */
  private static void reference(BlockFp8.ScaleRule rule, float[] x, int rows, int cols, int br, int bc, boolean pow2,
      byte[] q, float[] sinv) {
    int sc = (cols + bc - 1) / bc;
    for (int t = 0; t < ((rows + br - 1) / br) * sc; t++) {
      int r0 = (t / sc) * br;
      int c0 = (t % sc) * bc;
      float amax = 0;
      for (int r = r0; r < Math.min(rows, r0 + br); r++) {
        for (int c = c0; c < Math.min(cols, c0 + bc); c++) {
          amax = Math.max(amax, Math.abs(x[r * cols + c]));
        }
      }
      boolean paddle = rule == BlockFp8.ScaleRule.PADDLE;
      float s;
      if (paddle) {
        s = amax == 0 ? 1f : 448f / amax;
        if (pow2) {
          s = Math.scalb(1f, Math.getExponent(s));
        }
        sinv[t] = 1f / s;
      } else {
        s = Math.max(amax, 1e-4f) / 448f;
        if (pow2) {
          s = (float) Math.pow(2, Math.ceil(Math.log(s) / Math.log(2) - 1e-9));  // exact for these magnitudes
        }
        sinv[t] = s;
      }
      for (int r = r0; r < Math.min(rows, r0 + br); r++) {
        for (int c = c0; c < Math.min(cols, c0 + bc); c++) {
          float v = paddle ? x[r * cols + c] * s : x[r * cols + c] / s;
          int mag = Math.min(FormatReference.nearestMagnitudeCode(v, 3, 7, 0x7E), 0x7E);
          q[r * cols + c] = (byte) (mag | (v < 0 ? 0x80 : 0));
        }
      }
    }
  }

  @Test
  void matchesNaiveReferenceOnAwkwardShapes() {
    Random rnd = new Random(3);
    int[][] shapes = {{130, 200, 128, 128}, {5, 257, 1, 128}, {1, 1, 128, 128}, {0, 7, 1, 128}, {129, 3, 128, 128}};
    for (int[] sh : shapes) {
      int rows = sh[0];
      int cols = sh[1];
      float[] x = new float[rows * cols];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(16) - 8));
      }
      if (x.length > 300) {
        for (int c = 0; c < Math.min(cols, 128); c++) {
          x[c] = 0f;  // a zero row: all-zero 1x128 block
        }
      }
      for (int variant = 0; variant < 4; variant++) {
        boolean pow2 = (variant & 1) != 0;
        BlockFp8.ScaleRule rule = BlockFp8.ScaleRule.values()[variant >> 1];
        int ns = BlockFp8.scaleRows(rows, sh[2]) * BlockFp8.scaleCols(cols, sh[3]);
        byte[] q = new byte[x.length];
        float[] sinv = new float[ns];
        BlockFp8.quantize(rule, x, rows, cols, sh[2], sh[3], pow2, q, sinv);
        byte[] rq = new byte[x.length];
        float[] rs = new float[ns];
        reference(rule, x, rows, cols, sh[2], sh[3], pow2, rq, rs);
        String what = rule + " " + rows + "x" + cols + " tiles " + sh[2] + "x" + sh[3] + " pow2=" + pow2;
        assertArrayEquals(rq, q, what + " codes");
        Tolerance.assertBitEqual(sinv, rs, what + " scales");
        float[] back = new float[x.length];
        BlockFp8.dequantize(q, sinv, rows, cols, sh[2], sh[3], back);
        float[] ref = new float[x.length];
        int sc = BlockFp8.scaleCols(cols, sh[3]);
        for (int i = 0; i < x.length; i++) {
          int code = q[i] & 0xFF;
          double v = FormatReference.magnitude(code & 0x7F, 3, 7) * ((code & 0x80) != 0 ? -1 : 1);
          ref[i] = (float) v * sinv[(i / cols / sh[2]) * sc + (i % cols) / sh[3]];
        }
        Tolerance.assertBitEqual(back, ref, what + " dequantize");
        Tolerance.FP8.assertClose(back, x, what + " round trip");
        ByteBuffer sb = ByteBuffer.allocate(4 * ns).order(ByteOrder.LITTLE_ENDIAN);
        sb.asFloatBuffer().put(sinv);
        float[] viaBuffers = new float[x.length];
        BlockFp8.dequantize(ByteBuffer.wrap(q), sb, rows, cols, sh[2], sh[3], viaBuffers);
        Tolerance.assertBitEqual(viaBuffers, back, what + " dequantize from buffers");
        if (pow2) {
          BlockFp8.scalesToE8m0(sinv, 0, new byte[ns], 0, ns);  // every pow2 scale is E8M0-representable
        }
      }
    }
  }

  @Test
  void argumentsAreChecked() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> BlockFp8.quantizeWeights(new float[130 * 4], 130, 4, false, new byte[520], new float[1]));
    assertTrue(e.getMessage().contains("scaleInv") && e.getMessage().contains("2"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> BlockFp8.quantize(new float[4], 2, 2, 0, 128, false, new byte[4], new float[4]));
    assertTrue(e.getMessage().contains("0x128"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> BlockFp8.scalesToE8m0(new float[] {3f}, 0, new byte[1], 0, 1));
    assertTrue(e.getMessage().contains("scale 0"), e.getMessage());
  }
}
