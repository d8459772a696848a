package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class Fp4E2m1Test {
  @Test
  void theSixteenCodes() {
    float[] expect = {0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f, -0f, -0.5f, -1f, -1.5f, -2f, -3f, -4f, -6f};
    for (int c = 0; c < 16; c++) {
      assertEquals(Float.floatToRawIntBits(expect[c]), Float.floatToRawIntBits(Fp4E2m1.decode(c)), "code " + c);
      assertEquals(c, Fp4E2m1.encode(expect[c]), "round trip " + c);
      assertEquals(FormatReference.magnitude(c & 7, 1, 1), Math.abs(Fp4E2m1.decode(c)), 0.0);
    }
  }

  @Test
  void specThresholdsAndTies() {
    // models-and-formats §3.7: ≤0.25 → 0, <0.75 → 0.5, ≤1.25 → 1, <1.75 → 1.5, ≤2.5 → 2, <3.5 → 3, ≤5 → 4, else 6
    Object[][] v = {
      {0.25f, 0}, {Math.nextUp(0.25f), 1}, {Math.nextDown(0.75f), 1}, {0.75f, 2}, {1.25f, 2},
      {Math.nextUp(1.25f), 3}, {Math.nextDown(1.75f), 3}, {1.75f, 4}, {2.5f, 4}, {Math.nextUp(2.5f), 5},
      {Math.nextDown(3.5f), 5}, {3.5f, 6}, {5f, 6}, {Math.nextUp(5f), 7}, {6f, 7}, {7f, 7}, {1e30f, 7},
      {Float.POSITIVE_INFINITY, 7}, {Float.NEGATIVE_INFINITY, 15}, {Float.NaN, 8}, {-0f, 8}, {-2.5f, 12},
      {-5.5f, 15}, {0x1p-140f, 0},
    };
    for (Object[] row : v) {
      float x = (Float) row[0];
      assertEquals((int) (Integer) row[1], Fp4E2m1.encode(x), "e2m1(" + x + ")");
    }
  }

  @Test
  void encodeMatchesNearestEvenWithSaturation() {
    for (float x : FormatReference.probes(1, 1, 7, 13, 5000)) {
      if (Float.isNaN(x)) {
        continue;
      }
      int sign = (Float.floatToRawIntBits(x) >>> 28) & 8;
      int c = Float.isInfinite(x) ? 7 : Math.min(FormatReference.nearestMagnitudeCode(x, 1, 1, 7), 7);
      assertEquals(sign | c, Fp4E2m1.encode(x), () -> "e2m1(" + x + ")");
    }
  }

  @Test
  void packingIsLowNibbleFirst() {
    float[] x = {1f, -6f, 0.5f, 3f, 2f};
    byte[] packed = new byte[4];
    Fp4E2m1.encode(x, 0, packed, 2, x.length);
    // element offset 2 → byte 1; codes 2, 15, 1, 5, 4
    assertEquals((byte) 0xF2, packed[1]);
    assertEquals((byte) 0x51, packed[2]);
    assertEquals((byte) 0x04, packed[3], "odd count leaves the last high nibble 0");
    float[] back = new float[5];
    Fp4E2m1.decode(packed, 2, back, 0, 5);
    for (int i = 0; i < 5; i++) {
      assertEquals(x[i], back[i], 0f);
    }
    ByteBuffer src = ByteBuffer.allocateDirect(20).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 5; i++) {
      src.putFloat(4 * i, x[i]);
    }
    ByteBuffer dst = ByteBuffer.allocateDirect(3);
    Fp4E2m1.encode(src, dst, 5);
    assertEquals((byte) 0xF2, dst.get(0));
    assertEquals((byte) 0x51, dst.get(1));
    assertEquals((byte) 0x04, dst.get(2));
    ByteBuffer out = ByteBuffer.allocate(20);
    Fp4E2m1.decode(dst, out, 5);
    assertEquals(-6f, out.order(ByteOrder.LITTLE_ENDIAN).getFloat(4), 0f);
    assertThrows(IllegalArgumentException.class, () -> Fp4E2m1.encode(x, 0, packed, 1, 2));
  }
}
