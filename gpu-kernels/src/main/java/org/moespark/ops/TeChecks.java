package org.moespark.ops;

/**
 * Argument checks shared by the TransformerEngine-style permutation ops ({@link TePermute},
 * {@link TeMaskPermute}, {@link TeSortChunks}). Every failure names the argument, the offending
 * value and what was expected. All size arithmetic is done in {@code long} so that an overflow is
 * reported instead of wrapping.
 */
final class TeChecks {
  /** Largest element count a Java array can reliably hold (the CPU backend's limit, not TE's). */
  static final long MAX_ARRAY = Integer.MAX_VALUE - 8L;

  private TeChecks() {}

  static <T> T notNull(T value, String name) {
    if (value == null) {
      throw new NullPointerException(name + " must not be null");
    }
    return value;
  }

  static void nonNegative(String name, long value) {
    if (value < 0) {
      throw new IllegalArgumentException(name + " must be >= 0, got " + value);
    }
  }

  static void positive(String name, long value) {
    if (value <= 0) {
      throw new IllegalArgumentException(name + " must be > 0, got " + value);
    }
  }

  /**
   * Element count of a tensor that the CPU backend materialises as one Java array.
   *
   * @throws IllegalArgumentException when the count does not fit a Java array
   */
  static int elements(String tensor, long rows, long cols) {
    long n = rows * cols; // both operands are non-negative ints, so the product fits a long
    if (n > MAX_ARRAY) {
      throw new IllegalArgumentException(tensor + " needs " + rows + " x " + cols + " = " + n
          + " elements, more than a Java array holds (" + MAX_ARRAY + "); the CPU backend cannot run this shape");
    }
    return (int) n;
  }

  /**
   * Rejects a count that upstream TransformerEngine keeps in a 32-bit signed integer (row ids,
   * expanded token counts): such inputs overflow upstream, so they are refused here too.
   */
  static int int32(String what, long value) {
    if (value > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(what + " = " + value + " overflows int32 (" + Integer.MAX_VALUE
          + "), the index type of TransformerEngine's row_id_map");
    }
    return (int) value;
  }

  static void length(String name, int actual, long expected, String shape) {
    if (actual != expected) {
      throw new IllegalArgumentException(
          name + ": expected " + expected + " elements (shape " + shape + "), got " + actual);
    }
  }

  /**
   * TE's index-map CUDA kernels access rows with 16-byte vectors, so hidden must be a multiple of
   * {@code 16 / elementBytes} (4 for fp32, 8 for bf16/fp16).
   */
  static void vectorWidth(String op, int hidden, int elementBytes, String dtype) {
    int width = 16 / elementBytes;
    if (hidden % width != 0) {
      throw new IllegalArgumentException(op + ": hidden = " + hidden + " is not a multiple of " + width
          + ", the 16-byte vector width of TransformerEngine's index-map kernels for " + dtype);
    }
  }
}
