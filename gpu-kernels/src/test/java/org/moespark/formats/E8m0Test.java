package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class E8m0Test {
  @Test
  void decodeAllCodes() {
    for (int b = 0; b < 255; b++) {
      assertEquals(Math.pow(2, b - 127), E8m0.decode((byte) b), 0.0, "code " + b);
      assertEquals(b - 127, E8m0.exponent((byte) b));
      assertEquals((byte) b, E8m0.ofPowerOfTwo(E8m0.decode((byte) b)));
      assertEquals((byte) b, E8m0.ofExponent(b - 127));
    }
    assertTrue(Float.isNaN(E8m0.decode((byte) 0xFF)));
    assertEquals(0x00400000, Float.floatToRawIntBits(E8m0.decode((byte) 0)), "2^-127 is an fp32 subnormal");
  }

  private static int torch(float x) {
    return E8m0.encodeTorch(x) & 0xFF;
  }

  @Test
  void torchCastVectors() {
    // models-and-formats §3.6 / §3.11 (torch float8_e8m0fnu)
    assertEquals(136, torch(448f), "448 → 512");
    assertEquals(136, torch(464f));
    assertEquals(136, torch(465f));
    assertEquals(136, torch(500f));
    assertEquals(140, torch(1e4f), "1e4 → 8192");
    assertEquals(255, torch(Float.POSITIVE_INFINITY));
    assertEquals(255, torch(Float.NaN));
    assertEquals(136, torch(-500f), "sign dropped");
    assertEquals(0, torch(0f), "0 → code 0 (2^-127)");
    assertEquals(117, torch(0x1p-10f));
    assertEquals(128, torch(1.5f), "1.5 → 2");
    assertEquals(129, torch(3f), "3 → 4");
    assertEquals(127, torch(0.75f), "0.75 → 1");
    assertEquals(129, torch(5f), "5 → 4");
    assertEquals(130, torch(7f), "7 → 8");
    assertEquals(127, torch(1.4999999f));
    assertEquals(254, torch(0x1.7FFFFEp127f));
    assertEquals(255, torch(0x1.8p127f), "1.5·2^127 rounds up to the NaN code");
    assertEquals(0, torch(0x1p-127f));
    assertEquals(1, torch(Float.intBitsToFloat(0x00400001)), "a subnormal just above 2^-127 rounds up to 2^-126");
  }

  @Test
  void logsAndArgumentChecks() {
    assertEquals(0, E8m0.floorLog2(1f));
    assertEquals(0, E8m0.floorLog2(1.99f));
    assertEquals(-149, E8m0.floorLog2(Float.MIN_VALUE));
    assertEquals(-127, E8m0.floorLog2(0x1.8p-127f));
    assertEquals(1, E8m0.ceilLog2(1.5f));
    assertEquals(1, E8m0.ceilLog2(2f));
    assertEquals(-9, E8m0.ceilLog2(0x1p-9f));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> E8m0.ofExponent(128));
    assertTrue(e.getMessage().contains("128"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> E8m0.ofPowerOfTwo(3f));
    assertTrue(e.getMessage().contains("3.0"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> E8m0.floorLog2(0f));
    assertThrows(IllegalArgumentException.class, () -> E8m0.exponent((byte) 0xFF));
  }
}
