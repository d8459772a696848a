package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.Random;
import org.moespark.testing.Tolerance;
import org.junit.jupiter.api.Test;

class Nvfp4Test {
  @Test
  void handComputedBlocks() {
    float g = 1f / 64;  // given global scale
    float[] w = new float[48];
    // block 0: amax 6 → block scale 6 / (6·g) = 64 = E4M3 0x68; divisor 64·g = 1 → the values' own codes
    float[] b0 = {0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f, 0.25f};
    System.arraycopy(b0, 0, w, 0, 16);
    // block 1: all zero → block scale 1.0 (0x38), codes 0
    // block 2: amax 3 → scale 32 (0x60), divisor 0.5: 3→6 (7), 1.3→2.6→3 (5), -0.2→-0.4→-0.5 (9), 0.75→1.5 (3)
    w[32] = 3f;
    w[33] = 1.3f;
    w[34] = -0.2f;
    w[35] = 0.75f;
    byte[] packed = new byte[24];
    byte[] scales = new byte[3];
    Nvfp4.quantize(w, 1, 48, g, packed, scales);
    assertArrayEquals(new byte[] {0x68, 0x38, 0x60}, scales);
    byte[] expectPacked = {
      0x10, 0x32, 0x54, 0x76, (byte) 0xA9, (byte) 0xCB, (byte) 0xED, 0x0F,  // last: 0.25 → 0 (tie to even)
      0, 0, 0, 0, 0, 0, 0, 0,
      0x57, 0x39, 0, 0, 0, 0, 0, 0,
    };
    assertArrayEquals(expectPacked, packed);
    float[] back = new float[48];
    Nvfp4.dequantize(packed, scales, g, 1, 48, back);
    for (int i = 0; i < 15; i++) {
      assertEquals(b0[i], back[i], 0f, "block 0 element " + i);
    }
    assertEquals(3f, back[32], 0f);
    assertEquals(1.5f, back[33], 0f);
    assertEquals(-0.25f, back[34], 0f);
    assertEquals(0.75f, back[35], 0f);
  }

  @Test
  void globalScaleFollowsModelOpt() {
    float[] w = {2688f, -1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    byte[] p = new byte[8];
    byte[] s = new byte[1];
    assertEquals(1f, Nvfp4.quantize(w, 1, 16, p, s), 0f);
    assertEquals(0x7E, s[0], "block with the tensor amax gets scale 448");
    assertEquals(2688f / 2688f, Nvfp4.globalScale(2688f), 0f);
  }

  /** Naive reference: the ModelOpt formulas with rounding from FormatReference (independent code). */
  private static void reference(float[] w, int rows, int cols, float g, byte[] packed, byte[] scales) {
    for (int b = 0; b < rows * cols / 16; b++) {
      float bamax = 0;
      for (int j = 0; j < 16; j++) {
        bamax = Math.max(bamax, Math.abs(w[16 * b + j]));
      }
      float s = bamax / (6f * g);
      if (s == 0 || Float.isNaN(s)) {
        s = 1f;
      }
      int sc = Math.min(FormatReference.nearestMagnitudeCode(s, 3, 7, 0x7E), 0x7E);
      scales[b] = (byte) sc;
      float divisor = (float) FormatReference.magnitude(sc, 3, 7) * g;
      for (int j = 0; j < 16; j++) {
        int q = 0;
        if (divisor != 0) {
          float v = w[16 * b + j] / divisor;
          q = Math.min(FormatReference.nearestMagnitudeCode(v, 1, 1, 7), 7) | (v < 0 || (v == 0 && 1 / v < 0) ? 8 : 0);
        }
        int idx = 16 * b + j;
        packed[idx / 2] |= (byte) ((idx & 1) == 0 ? q : q << 4);
      }
    }
  }

  @Test
  void quantizeMatchesNaiveReferenceAndDequantizesClosely() {
    Random r = new Random(42);
    int rows = 37;
    int cols = 96;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (r.nextGaussian() * Math.exp(r.nextGaussian()));
    }
    w[5 * cols] = 0f;  // exercise ±0
    w[5 * cols + 1] = -0f;
    for (int j = 0; j < 16; j++) {
      w[7 * cols + 16 + j] = 0f;  // an all-zero block
    }
    byte[] packed = new byte[w.length / 2];
    byte[] scales = new byte[w.length / 16];
    float g = Nvfp4.quantize(w, rows, cols, packed, scales);
    float amax = 0;
    for (float v : w) {
      amax = Math.max(amax, Math.abs(v));
    }
    assertEquals(amax / 2688f, g, 0f);
    byte[] refPacked = new byte[packed.length];
    byte[] refScales = new byte[scales.length];
    reference(w, rows, cols, g, refPacked, refScales);
    assertArrayEquals(refScales, scales, "block scales");
    assertArrayEquals(refPacked, packed, "packed codes");
    float[] back = new float[w.length];
    Nvfp4.dequantize(packed, scales, g, rows, cols, back);
    float[] ref = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      int q = (packed[i / 2] >> ((i & 1) * 4)) & 0xF;
      double lut = FormatReference.magnitude(q & 7, 1, 1) * ((q & 8) != 0 ? -1 : 1);
      ref[i] = (float) (lut * FormatReference.magnitude(scales[i / 16] & 0x7F, 3, 7)) * g;
    }
    Tolerance.assertBitEqual(back, ref, "NVFP4 dequantize");
    Tolerance.FP4.assertClose(back, w, "NVFP4 round trip");
    // buffers (e.g. mapped safetensors) give the same
    float[] viaBuffers = new float[w.length];
    ByteBuffer pb = ByteBuffer.allocateDirect(packed.length + 3);
    pb.position(3);
    pb.put(packed).position(3);
    Nvfp4.dequantize(pb, ByteBuffer.wrap(scales), g, rows, cols, viaBuffers);
    Tolerance.assertBitEqual(viaBuffers, back, "NVFP4 dequantize from buffers");
  }

  @Test
  void degenerateInputs() {
    float[] zeros = new float[32];
    byte[] p = new byte[16];
    byte[] s = new byte[2];
    assertEquals(0f, Nvfp4.quantize(zeros, 2, 16, p, s), 0f);
    assertArrayEquals(new byte[] {0x38, 0x38}, s, "zero tensor: block scales 1.0");
    assertArrayEquals(new byte[16], p);
    // caller-supplied global scale too small: the block scale saturates at 448 instead of NaN
    float[] w = new float[16];
    w[0] = 1e6f;
    Nvfp4.quantize(w, 1, 16, 1e-3f, new byte[8], s);
    assertEquals(0x7E, s[0]);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Nvfp4.quantize(new float[24], 1, 24, 1f, new byte[12], new byte[2]));
    assertTrue(e.getMessage().contains("24"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> Nvfp4.quantize(new float[16], 1, 16, -1f, new byte[8], new byte[1]));
    assertTrue(e.getMessage().contains("-1.0"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> Nvfp4.dequantize(new byte[7], new byte[1], 1f, 1, 16, new float[16]));
    assertTrue(e.getMessage().contains("packed"), e.getMessage());
  }
}
