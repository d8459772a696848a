package org.moespark.ops;

import java.lang.reflect.Array;
import org.moespark.formats.Bf16;

/**
 * Row movement shared by the TE permutation ops. Rows are moved as raw bits (System.arraycopy), so
 * one code path serves fp32 ({@code float[]}) and bf16 ({@code short[]}) tokens and the copies are
 * bit-exact (NaN payloads and -0.0 included). Element offsets are computed in {@code long}.
 */
final class TeRows {
  private TeRows() {}

  /** A zero-filled array of the same element type as {@code like} (0 bits = +0.0 in fp32 and bf16). */
  @SuppressWarnings("unchecked")
  static <T> T zeros(T like, int length) {
    return (T) Array.newInstance(like.getClass().getComponentType(), length);
  }

  static void copyRow(Object src, long srcRow, Object dst, long dstRow, int hidden) {
    if (hidden == 0) {
      return;
    }
    System.arraycopy(src, Math.toIntExact(srcRow * hidden), dst, Math.toIntExact(dstRow * hidden), hidden);
  }

  /** Widens row {@code row} of fp32 or bf16 tokens into {@code out[0 .. hidden)}. */
  static void loadRow(Object src, long row, int hidden, float[] out) {
    int base = Math.toIntExact(row * hidden);
    if (src instanceof float[] f) {
      System.arraycopy(f, base, out, 0, hidden);
    } else {
      short[] s = (short[]) src;
      for (int h = 0; h < hidden; h++) {
        out[h] = Bf16.decode(s[base + h]);
      }
    }
  }

  /** Stores {@code acc[0 .. hidden)} into row {@code row}, rounding to bf16 (RNE) for bf16 tokens. */
  static void storeRow(float[] acc, Object dst, long row, int hidden) {
    int base = Math.toIntExact(row * hidden);
    if (dst instanceof float[] f) {
      System.arraycopy(acc, 0, f, base, hidden);
    } else {
      short[] s = (short[]) dst;
      for (int h = 0; h < hidden; h++) {
        s[base + h] = Bf16.encode(acc[h]);
      }
    }
  }
}
