package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class Bf16Test {
  private static int enc(int fp32Bits) {
    return Bf16.encode(Float.intBitsToFloat(fp32Bits)) & 0xFFFF;
  }

  @Test
  void specVectors() {
    // models-and-formats §3.1 (torch CPU and CUDA agree)
    assertEquals(0x3F80, enc(0x3F808000), "tie rounds to even (down)");
    assertEquals(0x3F82, enc(0x3F818000), "tie rounds to even (up)");
    assertEquals(0x3F81, enc(0x3F808001));
    assertEquals(0x3F81, enc(0x3F80FFFF));
    assertEquals(0x7F80, enc(0x7F7FFFFF), "FLT_MAX overflows to +inf");
    assertEquals(0xFF80, enc(0xFF800000), "-inf");
  }

  /** Independent RNE: pick the nearer of the two neighbouring bf16 values by exact double distances. */
  private static int referenceEncode(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = bits & 0x80000000;
    int abs = bits & 0x7FFFFFFF;
    int lo = abs & 0xFFFF0000;
    int hi = lo + 0x10000;
    double ax = Math.abs((double) x);
    double vlo = Float.intBitsToFloat(lo);
    double vhi = hi == 0x7F800000 ? Math.pow(2, 128) : Float.intBitsToFloat(hi);
    double dlo = ax - vlo;
    double dhi = vhi - ax;
    int pick = dlo < dhi ? lo : dlo > dhi ? hi : (((lo >>> 16) & 1) == 0 ? lo : hi);
    return ((sign | pick) >>> 16) & 0xFFFF;
  }

  @Test
  void encodeMatchesAnIndependentNearestEvenForAllUpperHalves() {
    int[] lowers = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF};
    Random r = new Random(7);
    for (int upper = 0; upper < 0x10000; upper++) {
      if ((upper & 0x7F80) == 0x7F80) {
        continue;  // inf/NaN upper halves: tested separately
      }
      for (int k = 0; k <= lowers.length; k++) {
        int low = k < lowers.length ? lowers[k] : r.nextInt(0x10000);
        float x = Float.intBitsToFloat((upper << 16) | low);
        assertEquals(referenceEncode(x), Bf16.encode(x) & 0xFFFF,
            () -> String.format("bf16(0x%08x)", Float.floatToRawIntBits(x)));
      }
    }
  }

  @Test
  void everyCodeRoundTripsAndNaNStaysQuietNaN() {
    for (int c = 0; c < 0x10000; c++) {
      short code = (short) c;
      float v = Bf16.decode(code);
      assertEquals(Float.intBitsToFloat(c << 16), v, 0f);
      if (Float.isNaN(v)) {
        int back = Bf16.encode(v) & 0xFFFF;
        assertTrue(Float.isNaN(Bf16.decode((short) back)), "NaN stays NaN for code " + c);
        assertEquals(c | 0x0040, back, "NaN keeps sign and payload, gains the quiet bit");
      } else {
        assertEquals(c, Bf16.encode(v) & 0xFFFF, "round trip of code 0x" + Integer.toHexString(c));
      }
    }
    assertEquals(0x7FC0, enc(0x7F800001), "signalling NaN is quieted, not turned into inf");
    assertEquals(0xFFC0, enc(0xFF800001));
  }

  @Test
  void signedZerosAndSubnormals() {
    assertEquals(0x0000, enc(0x00000000));
    assertEquals(0x8000, enc(0x80000000));
    assertEquals(0x0001, enc(0x00010000), "smallest bf16 subnormal");
    assertEquals(0x0000, enc(0x00008000), "tie between 0 and the smallest subnormal goes to 0");
    assertEquals(0x0001, enc(0x00008001));
  }

  @Test
  void bulkArraysAndBuffersAgreeWithScalar() {
    float[] x = FormatReference.probes(7, 127, 0x7F7F, 3, 2000);
    short[] codes = new short[x.length + 3];
    Bf16.encode(x, 0, codes, 3, x.length);
    java.nio.ByteBuffer src = java.nio.ByteBuffer.allocateDirect(4 * x.length + 8).order(java.nio.ByteOrder.BIG_ENDIAN);
    src.position(8);
    java.nio.ByteBuffer dst = java.nio.ByteBuffer.allocateDirect(2 * x.length + 2);
    dst.position(2);
    for (int i = 0; i < x.length; i++) {
      src.order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(8 + 4 * i, x[i]);
    }
    Bf16.encode(src, dst, x.length);
    assertEquals(8, src.position(), "positions are left unchanged");
    float[] back = new float[x.length];
    Bf16.decode(codes, 3, back, 0, x.length);
    for (int i = 0; i < x.length; i++) {
      short expect = Bf16.encode(x[i]);
      assertEquals(expect, codes[3 + i]);
      assertEquals(expect, dst.order(java.nio.ByteOrder.LITTLE_ENDIAN).getShort(2 + 2 * i), "buffer code " + i);
      assertEquals(Float.floatToRawIntBits(Bf16.decode(expect)), Float.floatToRawIntBits(back[i]));
    }
  }
}
