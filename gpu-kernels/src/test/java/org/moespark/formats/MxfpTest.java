package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

class MxfpTest {
  private static final double[] LUT = {0, .5, 1, 1.5, 2, 3, 4, 6, -0.0, -.5, -1, -1.5, -2, -3, -4, -6};

  @Test
  void gptOssDecodeByHand() {
    // one row of 64 elements = 2 blocks of 16 bytes; GPT-OSS: element 2j = LUT[b & 0xF], 2j+1 = LUT[b >> 4]
    byte[] blocks = new byte[32];
    blocks[0] = 0x21;          // 0.5, 1
    blocks[1] = (byte) 0xF7;   // 6, -6
    blocks[16] = (byte) 0x9A;  // -1, -0.5
    byte[] scales = {(byte) 128, (byte) 125};  // ×2, ×1/4
    float[] out = new float[64];
    Mxfp.dequantize(Mxfp.Kind.MXFP4, blocks, scales, 1, 64, out);
    assertEquals(1f, out[0], 0f);
    assertEquals(2f, out[1], 0f);
    assertEquals(12f, out[2], 0f);
    assertEquals(-12f, out[3], 0f);
    assertEquals(0f, out[4], 0f);
    assertEquals(-0.25f, out[32], 0f);
    assertEquals(-0.125f, out[33], 0f);
    // a NaN scale makes its block NaN
    Mxfp.dequantize(Mxfp.Kind.MXFP4, blocks, new byte[] {(byte) 0xFF, 127}, 1, 64, out);
    assertTrue(Float.isNaN(out[0]) && Float.isNaN(out[31]) && out[32] == -1f);
    assertEquals(0x7FC00000, Float.floatToRawIntBits(out[1]), "NaN results are the canonical quiet NaN");
  }

  @Test
  void quantizeByHand() {
    float[] x = new float[96];
    x[0] = 7.9f * 4;   // amax 31.6: floor(log2) = 4, e = 4 - 2 = 2 → scale code 129
    x[1] = 1f;         // 1/4 = 0.25 → tie → 0
    x[2] = -2.5f;      // -0.625 → -0.5 (code 9)
    // block 1 (elements 32..63) all zero → code 0
    x[64] = 448f;      // MXFP4: floor(log2 448) = 8 → e = 6 → 448/64 = 7 → saturates to 6
    x[65] = Float.NaN;  // block 2 (elements 64..95) has a NaN → scale 0xFF
    byte[] e = new byte[48];
    byte[] s = new byte[3];
    Mxfp.quantize(Mxfp.Kind.MXFP4, x, 1, 96, e, s);
    assertArrayEquals(new byte[] {(byte) 129, 0, (byte) 0xFF}, s);
    assertEquals(0x07, e[0], "31.6/4 = 7.9 saturates to 6, next element 0.25 → 0");
    assertEquals(0x09, e[1]);
    for (int i = 16; i < 32; i++) {
      assertEquals(0, e[i]);
    }
    // MXFP8 E4M3: amax 448 → e = 8 - 8 = 0 → code 127, elements unchanged
    float[] y = new float[32];
    y[0] = 448f;
    y[1] = -3f;
    y[2] = 0x1p-10f;  // below E4M3's subnormal tie → 0
    byte[] e8 = new byte[32];
    byte[] s8 = new byte[1];
    Mxfp.quantize(Mxfp.Kind.MXFP8_E4M3, y, 1, 32, e8, s8);
    assertEquals(127, s8[0]);
    assertEquals(0x7E, e8[0]);
    assertEquals((byte) 0xC4, e8[1]);
    assertEquals(0, e8[2]);
    // MXFP8 E5M2: amax 448 → e = 8 - 15 = -7 → scale 2^-7, 448·128 = 57344 = max
    Mxfp.quantize(Mxfp.Kind.MXFP8_E5M2, y, 1, 32, e8, s8);
    assertEquals(120, s8[0]);
    assertEquals(0x7B, e8[0]);
  }

  private static double elemValue(Mxfp.Kind k, int code) {
    switch (k) {
      case MXFP4:
        return LUT[code];
      case MXFP8_E4M3:
        return FormatReference.magnitude(code & 0x7F, 3, 7) * ((code & 0x80) != 0 ? -1 : 1);
      default:
        return FormatReference.magnitude(code & 0x7F, 2, 15) * ((code & 0x80) != 0 ? -1 : 1);
    }
  }

  /** Naive reference: OCP formula with Math.getExponent-based exponents and grid rounding. */
  private static void reference(Mxfp.Kind k, float[] x, byte[] elems, byte[] scales) {
    int m = k == Mxfp.Kind.MXFP4 ? 1 : k == Mxfp.Kind.MXFP8_E4M3 ? 3 : 2;
    int bias = k == Mxfp.Kind.MXFP4 ? 1 : k == Mxfp.Kind.MXFP8_E4M3 ? 7 : 15;
    int maxCode = k == Mxfp.Kind.MXFP4 ? 7 : k == Mxfp.Kind.MXFP8_E4M3 ? 0x7E : 0x7B;
    int emax = k == Mxfp.Kind.MXFP4 ? 2 : k == Mxfp.Kind.MXFP8_E4M3 ? 8 : 15;
    for (int b = 0; b < x.length / 32; b++) {
      float amax = 0;
      for (int j = 0; j < 32; j++) {
        amax = Math.max(amax, Math.abs(x[32 * b + j]));
      }
      int e = amax == 0 ? -127 : Math.max(Math.getExponent(amax) - emax, -127);  // inputs are normal floats
      scales[b] = (byte) (e + 127);
      for (int j = 0; j < 32; j++) {
        double v = x[32 * b + j] / Math.pow(2, e);  // exact in double
        int mag = Math.min(FormatReference.nearestMagnitudeCode((float) v, m, bias, maxCode), maxCode);
        int signBit = k == Mxfp.Kind.MXFP4 ? 8 : 0x80;
        int code = mag | (Math.copySign(1.0, v) < 0 ? signBit : 0);
        int i = 32 * b + j;
        if (k == Mxfp.Kind.MXFP4) {
          elems[i / 2] |= (byte) ((i & 1) == 0 ? code : code << 4);
        } else {
          elems[i] = (byte) code;
        }
      }
    }
  }

  @Test
  void quantizeMatchesNaiveReferenceForAllKinds() {
    Random r = new Random(1);
    int rows = 9;
    int cols = 160;
    float[] x = new float[rows * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(20) - 10));
    }
    for (int j = 0; j < 32; j++) {
      x[cols + j] = 0f;
    }
    for (Mxfp.Kind k : Mxfp.Kind.values()) {
      byte[] e = new byte[(int) k.elementBytes(x.length)];
      byte[] s = new byte[x.length / 32];
      Mxfp.quantize(k, x, rows, cols, e, s);
      byte[] re = new byte[e.length];
      byte[] rs = new byte[s.length];
      reference(k, x, re, rs);
      assertArrayEquals(rs, s, k + " scales");
      assertArrayEquals(re, e, k + " elements");
      float[] back = new float[x.length];
      Mxfp.dequantize(k, e, s, rows, cols, back);
      float[] ref = new float[x.length];
      for (int i = 0; i < x.length; i++) {
        int code = k == Mxfp.Kind.MXFP4 ? (e[i / 2] >> ((i & 1) * 4)) & 0xF : e[i] & 0xFF;
        ref[i] = (float) (elemValue(k, code) * Math.pow(2, (s[i / 32] & 0xFF) - 127));
      }
      Tolerance.assertBitEqual(back, ref, k + " dequantize");
      (k == Mxfp.Kind.MXFP4 ? Tolerance.FP4 : Tolerance.FP8).assertClose(back, x, k + " round trip");
      float[] viaBuffers = new float[x.length];
      Mxfp.dequantize(k, ByteBuffer.allocateDirect(e.length).put(e).flip(), ByteBuffer.wrap(s), rows, cols,
          viaBuffers);
      Tolerance.assertBitEqual(viaBuffers, back, k + " dequantize from buffers");
    }
  }

  @Test
  void argumentsAreChecked() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Mxfp.quantize(Mxfp.Kind.MXFP4, new float[48], 1, 48, new byte[24], new byte[2]));
    assertTrue(e.getMessage().contains("48"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> Mxfp.dequantize(Mxfp.Kind.MXFP8_E4M3, new byte[16], new byte[1], 1, 32, new float[32]));
    assertTrue(e.getMessage().contains("elements") && e.getMessage().contains("32"), e.getMessage());
  }
}
