package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The stop-gap bf16 helper against the spec's measured vectors (models-and-formats §3.1). */
class TeBf16Test {
  @ParameterizedTest
  @CsvSource({
      "3F808000, 3F80", // tie -> even (down)
      "3F818000, 3F82", // tie -> even (up)
      "3F808001, 3F81",
      "3F80FFFF, 3F81",
      "7F7FFFFF, 7F80", // FLT_MAX overflows to +inf
      "FF800000, FF80"})
  void roundsToNearestEven(String in, String out) {
    float f = Float.intBitsToFloat(Integer.parseUnsignedInt(in, 16));
    assertEquals(Integer.parseInt(out, 16), TeBf16.fromFloat(f) & 0xFFFF, in);
  }

  @Test
  void nanStaysNanAndWideningIsExact() {
    assertTrue(Float.isNaN(TeBf16.toFloat(TeBf16.fromFloat(Float.NaN))));
    assertTrue(Float.isNaN(TeBf16.toFloat(TeBf16.fromFloat(Float.intBitsToFloat(0x7F800001)))));
    assertEquals(0x3F800000, Float.floatToRawIntBits(TeBf16.toFloat((short) 0x3F80)));
    assertEquals(0x80000000, Float.floatToRawIntBits(TeBf16.toFloat((short) 0x8000)));
    assertEquals(0xC0490000, Float.floatToRawIntBits(TeBf16.toFloat((short) 0xC049)));
  }
}
