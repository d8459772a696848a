package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class Fp8Test {
  private static int e4(float x) {
    return Fp8E4m3.encodeTorch(x) & 0xFF;
  }

  private static int e4s(float x) {
    return Fp8E4m3.encodeSaturating(x) & 0xFF;
  }

  private static int e5(float x) {
    return Fp8E5m2.encodeTorch(x) & 0xFF;
  }

  private static int e5s(float x) {
    return Fp8E5m2.encodeSaturating(x) & 0xFF;
  }

  @Test
  void e4m3SpecVectorsTorch() {
    // models-and-formats §3.12 (measured on torch CPU/CUDA and ml_dtypes)
    Object[][] v = {
      {0.0f, 0x00}, {1.0f, 0x38}, {1.0625f, 0x38}, {1.09375f, 0x39}, {240f, 0x77}, {248f, 0x78},
      {256f, 0x78}, {272f, 0x78}, {3f, 0x44}, {1.5f, 0x3C}, {0.25f, 0x28}, {288f, 0x79}, {416f, 0x7D},
      {432f, 0x7E}, {440f, 0x7E}, {449f, 0x7E}, {460f, 0x7E}, {464f, 0x7E}, {465f, 0x7F}, {480f, 0x7F},
      {Float.POSITIVE_INFINITY, 0x7F}, {Float.NaN, 0x7F}, {-500f, 0xFF}, {-0.1f, 0x9D},
      {0x1p-6f, 0x08}, {0x1p-7f, 0x04}, {0x1p-9f, 0x01}, {0x1p-10f, 0x00}, {1.5f * 0x1p-10f, 0x01},
      {0.75f, 0x34}, {5f, 0x4A}, {7f, 0x4E},
    };
    for (Object[] row : v) {
      float x = (Float) row[0];
      assertEquals((int) (Integer) row[1], e4(x), "e4m3 torch(" + x + ")");
    }
    assertEquals(-0.1015625f, Fp8E4m3.decode((byte) 0x9D), 0f);
  }

  @Test
  void e4m3SaturationBoundaries() {
    // satfinite: everything past 448 (ties included) and inf → ±448; NaN → 0x7F
    for (float x : new float[] {448f, 449f, 464f, 465f, 479f, 480f, 500f, 1e4f, Float.MAX_VALUE,
        Float.POSITIVE_INFINITY}) {
      assertEquals(0x7E, e4s(x), "sat(" + x + ")");
      assertEquals(0xFE, e4s(-x), "sat(" + -x + ")");
    }
    assertEquals(0x7F, e4s(Float.NaN));
    assertEquals(0x7F, e4s(Float.intBitsToFloat(0xFFC00000)), "negative NaN → canonical 0x7F");
    // torch: 464 is the tie 448/480 → 448 (even); 465 and 480 → NaN with the sign
    assertEquals(0x7E, e4(464f));
    assertEquals(0x7F, e4(464.00003f));
    assertEquals(0x7F, e4(480f));
    assertEquals(0xFF, e4(-480f));
    assertEquals(0xFF, e4(Float.NEGATIVE_INFINITY));
    assertEquals(0xFF, e4(Float.intBitsToFloat(0xFFC00000)));
  }

  @Test
  void e5m2SpecVectors() {
    assertEquals(0x3C, e5(1f));
    for (float x : new float[] {240f, 256f, 272f, 288f}) {
      assertEquals(0x5C, e5(x), "e5m2(" + x + ")");
    }
    assertEquals(0x5E, e5(416f));
    for (float x : new float[] {432f, 440f, 448f, 449f, 460f, 464f, 465f}) {
      assertEquals(0x5F, e5(x), "e5m2(" + x + ")");
    }
    assertEquals(0x60, e5(480f));
    assertEquals(0x60, e5(500f));
    assertEquals(0x71, e5(1e4f));
    assertEquals(0x7B, e5(57344f));
    assertEquals(0x7C, e5(61440f), "midpoint to 2^16 rounds to inf");
    assertEquals(0x7C, e5(65536f));
    assertEquals(0x7C, e5(Float.POSITIVE_INFINITY));
    assertEquals(0xE0, e5(-500f));
    assertEquals(0x7F, e5(Float.NaN));
    // saturating variant
    assertEquals(0x7B, e5s(61440f));
    assertEquals(0x7B, e5s(Float.POSITIVE_INFINITY));
    assertEquals(0xFB, e5s(Float.NEGATIVE_INFINITY));
    assertEquals(0x7F, e5s(Float.NaN));
    assertEquals(0x7B, e5s(61439.996f));
  }

  private static double signed(int c, int m, int bias) {
    double v = FormatReference.magnitude(c & 0x7F, m, bias);
    return (c & 0x80) != 0 ? -v : v;
  }

  @Test
  void all256CodesDecodeToTheFormulaAndRoundTrip() {
    for (int c = 0; c < 256; c++) {
      byte b = (byte) c;
      float v4 = Fp8E4m3.decode(b);
      if ((c & 0x7F) == 0x7F) {
        assertTrue(Float.isNaN(v4), "e4m3 NaN code " + c);
        assertTrue(Fp8E4m3.isNaN(Fp8E4m3.encodeTorch(v4)) && Fp8E4m3.isNaN(Fp8E4m3.encodeSaturating(v4)));
      } else {
        assertEquals(signed(c, 3, 7), v4, 0.0, "e4m3 decode " + c);
        assertEquals(c, e4(v4), "e4m3 torch round trip " + c);
        assertEquals(c, e4s(v4), "e4m3 sat round trip " + c);
      }
      float v5 = Fp8E5m2.decode(b);
      int mag = c & 0x7F;
      if (mag > 0x7C) {
        assertTrue(Float.isNaN(v5), "e5m2 NaN code " + c);
        assertTrue(Float.isNaN(Fp8E5m2.decode(Fp8E5m2.encodeTorch(v5))));
      } else if (mag == 0x7C) {
        assertEquals((c & 0x80) != 0 ? Float.NEGATIVE_INFINITY : Float.POSITIVE_INFINITY, v5, 0f);
        assertEquals(c, e5(v5));
      } else {
        assertEquals(signed(c, 2, 15), v5, 0.0, "e5m2 decode " + c);
        assertEquals(c, e5(v5), "e5m2 torch round trip " + c);
        assertEquals(c, e5s(v5), "e5m2 sat round trip " + c);
      }
    }
    assertEquals(448f, Fp8E4m3.decode((byte) 0x7E), 0f);
    assertEquals(0x7FC00000, Float.floatToRawIntBits(Fp8E4m3.decode((byte) 0x7F)), "NaN bits are defined");
    assertEquals(0xFFC00000, Float.floatToRawIntBits(Fp8E4m3.decode((byte) 0xFF)));
    assertEquals(0x80000000, Float.floatToRawIntBits(Fp8E4m3.decode((byte) 0x80)), "-0");
    assertEquals(57344f, Fp8E5m2.decode((byte) 0x7B), 0f);
  }

  @Test
  void encodersMatchNearestEvenOnTheGrid() {
    for (float x : FormatReference.probes(3, 7, 0x7E, 5, 20000)) {
      if (Float.isNaN(x)) {
        continue;
      }
      int sign = (Float.floatToRawIntBits(x) >>> 24) & 0x80;
      int c = Float.isInfinite(x) ? 0x7F : FormatReference.nearestMagnitudeCode(x, 3, 7, 0x7E);
      assertEquals(sign | Math.min(c, 0x7E), e4s(x), () -> "e4m3 sat(" + x + ")");
      assertEquals(sign | (c > 0x7E ? 0x7F : c), e4(x), () -> "e4m3 torch(" + x + ")");
    }
    for (float x : FormatReference.probes(2, 15, 0x7B, 6, 20000)) {
      if (Float.isNaN(x)) {
        continue;
      }
      int sign = (Float.floatToRawIntBits(x) >>> 24) & 0x80;
      int c = Float.isInfinite(x) ? 0x7C : FormatReference.nearestMagnitudeCode(x, 2, 15, 0x7B);
      assertEquals(sign | Math.min(c, 0x7B), e5s(x), () -> "e5m2 sat(" + x + ")");
      assertEquals(sign | Math.min(c, 0x7C), e5(x), () -> "e5m2 torch(" + x + ")");
    }
  }

  @Test
  void bulkArraysAndBuffersAgreeWithScalar() {
    float[] x = FormatReference.probes(3, 7, 0x7E, 9, 500);
    byte[] sat = new byte[x.length + 1];
    byte[] torch = new byte[x.length];
    Fp8E4m3.encodeSaturating(x, 0, sat, 1, x.length);
    Fp8E4m3.encodeTorch(x, 0, torch, 0, x.length);
    ByteBuffer src = ByteBuffer.allocateDirect(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < x.length; i++) {
      src.putFloat(4 * i, x[i]);
    }
    ByteBuffer d5 = ByteBuffer.allocateDirect(x.length);
    Fp8E5m2.encodeTorch(src, d5, x.length);
    ByteBuffer decoded = ByteBuffer.allocate(4 * x.length);
    Fp8E4m3.decode(ByteBuffer.wrap(torch), decoded, x.length);
    float[] decodedArr = new float[x.length];
    Fp8E5m2.decode(d5, decodedArr, 0, x.length);
    for (int i = 0; i < x.length; i++) {
      assertEquals(Fp8E4m3.encodeSaturating(x[i]), sat[1 + i]);
      assertEquals(Fp8E4m3.encodeTorch(x[i]), torch[i]);
      assertEquals(Fp8E5m2.encodeTorch(x[i]), d5.get(i));
      assertEquals(Float.floatToRawIntBits(Fp8E4m3.decode(torch[i])),
          Float.floatToRawIntBits(decoded.order(ByteOrder.LITTLE_ENDIAN).getFloat(4 * i)));
      assertEquals(Float.floatToRawIntBits(Fp8E5m2.decode(d5.get(i))), Float.floatToRawIntBits(decodedArr[i]));
    }
  }

  @Test
  void argumentsAreChecked() {
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> Fp8E4m3.encodeSaturating(new float[4], 2, new byte[4], 0, 3));
    assertTrue(e.getMessage().contains("src") && e.getMessage().contains("[2, 5)"), e.getMessage());
    e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> Fp8E4m3.decode(ByteBuffer.allocate(2), ByteBuffer.allocate(16), 4));
    assertTrue(e.getMessage().contains("needs 4 bytes"), e.getMessage());
  }
}
