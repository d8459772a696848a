package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import org.junit.jupiter.api.function.Executable;

/** Test-only helpers for the TE permutation tests: data generators, bf16 oracles, bit-exact asserts. */
final class TeTestSupport {
  private TeTestSupport() {}

  /**
   * fp32 -> bf16 RNE written independently of the code under test (compare the dropped half with
   * 0x8000 instead of adding a bias).
   */
  static short bf16(float f) {
    int b = Float.floatToRawIntBits(f);
    if (Float.isNaN(f)) {
      return (short) ((b >>> 16) | 0x40);
    }
    int upper = b >>> 16;
    int lower = b & 0xFFFF;
    if (lower > 0x8000 || (lower == 0x8000 && (upper & 1) == 1)) {
      upper++;
    }
    return (short) upper;
  }

  static float f32(short bf16) {
    return Float.intBitsToFloat((bf16 & 0xFFFF) << 16);
  }

  /** Tokens with few significant bits (k/64, |k| < 1024), so sums of dyadic multiples stay exact. */
  static float[] exactTokens(Random rnd, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      int k = rnd.nextInt(2047) - 1023;
      x[i] = (k == 0 ? 1 : k) / 64f;
    }
    return x;
  }

  static float[] gaussian(Random rnd, int n) {
    float[] x = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) rnd.nextGaussian();
    }
    return x;
  }

  static short[] bf16Tokens(Random rnd, int n) {
    short[] x = new short[n];
    for (int i = 0; i < n; i++) {
      x[i] = bf16((float) rnd.nextGaussian());
    }
    return x;
  }

  static void assertShortsEqual(short[] expected, short[] actual, String what) {
    if (expected.length != actual.length) {
      fail(what + ": length mismatch: expected " + expected.length + ", got " + actual.length);
    }
    for (int i = 0; i < expected.length; i++) {
      if (expected[i] != actual[i]) {
        fail(String.format("%s: first difference at %d: expected 0x%04x, got 0x%04x", what, i,
            expected[i] & 0xFFFF, actual[i] & 0xFFFF));
      }
    }
  }

  /** Asserts that {@code call} is rejected with an IllegalArgumentException naming {@code fragments}. */
  static void assertRejects(Executable call, String... fragments) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' should mention '" + f + "'");
    }
  }
}
