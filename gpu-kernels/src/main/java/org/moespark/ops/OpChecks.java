package org.moespark.ops;

/**
 * Argument validation shared by the operators of this package. Every failure is an
 * {@link IllegalArgumentException} whose message names the operator, the tensor or argument, the
 * offending index and the expected versus the actual value.
 *
 * <p>Sizes are {@code int} (as in the CUDA twins' signatures); every product of sizes is formed in
 * {@code long} and rejected when it does not fit a Java array ({@link #MAX_ELEMENTS}), so no
 * row × hidden product can overflow 32-bit index math later (Paddle PR #75607, TE #2908).
 */
final class OpChecks {
  /** Largest element count of one array (the JVM's practical array limit). */
  static final int MAX_ELEMENTS = Integer.MAX_VALUE - 8;

  private OpChecks() {}

  static IllegalArgumentException fail(String op, String message) {
    return new IllegalArgumentException(op + ": " + message);
  }

  static <T> T nonNull(String op, String name, T value) {
    if (value == null) {
      throw fail(op, name + " must not be null");
    }
    return value;
  }

  static int nonNegative(String op, String name, int value) {
    if (value < 0) {
      throw fail(op, name + " must be >= 0, got " + value);
    }
    return value;
  }

  static int positive(String op, String name, int value) {
    if (value <= 0) {
      throw fail(op, name + " must be >= 1, got " + value);
    }
    return value;
  }

  static int inRange(String op, String name, int value, int lo, int hi) {
    if (value < lo || value > hi) {
      throw fail(op, name + " must be in [" + lo + ", " + hi + "], got " + value);
    }
    return value;
  }

  /** {@code a * b} as an element count; rejects products that do not fit one Java array. */
  static int elements(String op, String what, long a, long b) {
    long n = a * b;
    if (a < 0 || b < 0 || (a != 0 && n / a != b) || n > MAX_ELEMENTS) {
      throw fail(op, what + " has " + a + " x " + b + " elements, more than the 32-bit limit "
          + MAX_ELEMENTS);
    }
    return (int) n;
  }

  /** Checks that {@code array} has exactly {@code expected} elements, naming its shape. */
  static void length(String op, String name, int actual, long expected, String shape) {
    if (actual != expected) {
      throw fail(op, name + " must have " + expected + " elements (shape " + shape + "), got "
          + actual);
    }
  }

  static int ceilDiv(int a, int b) {
    return (int) (((long) a + b - 1) / b);
  }
}
