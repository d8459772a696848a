package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class Fp16Test {
  private static final int MAX_CODE = 0x7BFF;

  private static int reference(float x) {
    int sign = (Float.floatToRawIntBits(x) >>> 16) & 0x8000;
    int c = FormatReference.nearestMagnitudeCode(x, 10, 15, MAX_CODE);
    return sign | Math.min(c, 0x7C00);  // past 65504 → inf
  }

  @Test
  void everyCodeDecodesToTheFormulaAndRoundTrips() {
    for (int c = 0; c < 0x10000; c++) {
      int mag = c & 0x7FFF;
      float v = Fp16.decode((short) c);
      if ((mag >> 10) == 31) {
        assertTrue(mag == 0x7C00 ? Float.isInfinite(v) : Float.isNaN(v), "code " + Integer.toHexString(c));
      } else {
        double expect = FormatReference.magnitude(mag, 10, 15) * ((c & 0x8000) != 0 ? -1 : 1);
        assertEquals(expect, v, 0.0, "decode 0x" + Integer.toHexString(c));
        assertEquals((c & 0x8000) != 0, (Float.floatToRawIntBits(v) & 0x80000000) != 0, "sign of " + c);
      }
      short back = Fp16.encode(v);
      if (Float.isNaN(v)) {
        assertTrue(Float.isNaN(Fp16.decode(back)), "NaN stays NaN");
        assertEquals(c | 0x0200, back & 0xFFFF, "NaN keeps sign and payload, gains the quiet bit");
      } else {
        assertEquals(c, back & 0xFFFF, "round trip 0x" + Integer.toHexString(c));
      }
    }
  }

  @Test
  void encodeMatchesNearestEvenOnTheGrid() {
    for (float x : FormatReference.probes(10, 15, MAX_CODE, 11, 20000, 7)) {
      if (Float.isNaN(x) || Float.isInfinite(x)) {
        continue;
      }
      assertEquals(reference(x), Fp16.encode(x) & 0xFFFF, () -> "fp16(" + x + ")");
    }
  }

  @Test
  void boundaries() {
    assertEquals(0x7BFF, Fp16.encode(65504f) & 0xFFFF);
    assertEquals(0x7BFF, Fp16.encode(65519.996f) & 0xFFFF);
    assertEquals(0x7C00, Fp16.encode(65520f) & 0xFFFF, "midpoint to 2^16 rounds to even = inf");
    assertEquals(0xFC00, Fp16.encode(Float.NEGATIVE_INFINITY) & 0xFFFF);
    assertEquals(0x0001, Fp16.encode(0x1p-24f) & 0xFFFF, "smallest subnormal");
    assertEquals(0x0000, Fp16.encode(0x1p-25f) & 0xFFFF, "tie to zero");
    assertEquals(0x0002, Fp16.encode(0x1.8p-24f) & 0xFFFF, "tie 1.5 ulp → 2 (even)");
    assertEquals(0x0400, Fp16.encode(0x1.ffcp-15f) & 0xFFFF, "largest subnormal tie rounds up into the normals");
    assertEquals(0x8000, Fp16.encode(-0f) & 0xFFFF);
    assertEquals(0x3C00, Fp16.encode(1f) & 0xFFFF);
    assertEquals(0x3C00, Fp16.encode(1.00048828125f) & 0xFFFF, "1 + 2^-11 is a tie → even");
  }
}
