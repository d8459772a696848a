package org.moespark.formats;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Argument checks shared by the bulk codecs; every message names the bad value. */
final class Checks {
  private Checks() {}

  static void count(long n, String what) {
    if (n < 0) {
      throw new IllegalArgumentException(what + ": element count must be >= 0, got " + n);
    }
  }

  static void range(int arrayLength, int offset, long n, String array) {
    if (offset < 0 || n < 0 || offset + n > arrayLength) {
      throw new IllegalArgumentException(array + ": range [" + offset + ", " + (offset + n)
          + ") outside an array of length " + arrayLength);
    }
  }

  /** The buffer seen little-endian from its position, after checking that {@code bytes} remain. */
  static ByteBuffer le(ByteBuffer b, long bytes, String what) {
    if (b == null) {
      throw new IllegalArgumentException(what + ": buffer is null");
    }
    if (bytes > b.remaining()) {
      throw new IllegalArgumentException(what + ": needs " + bytes + " bytes from position " + b.position()
          + " but only " + b.remaining() + " remain (limit " + b.limit() + ")");
    }
    return b.slice().order(ByteOrder.LITTLE_ENDIAN);
  }

  static void writable(ByteBuffer b, String what) {
    if (b.isReadOnly()) {
      throw new IllegalArgumentException(what + ": buffer is read-only");
    }
  }

  static void shape(int rows, int cols, String what) {
    if (rows < 0 || cols < 0) {
      throw new IllegalArgumentException(what + ": shape must be non-negative, got [" + rows + ", " + cols + "]");
    }
  }

  static void length(long have, long need, String what) {
    if (have < need) {
      throw new IllegalArgumentException(what + ": expected at least " + need + " elements, got " + have);
    }
  }

  static int toInt(long n, String what) {
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(what + ": " + n + " elements exceed a Java array");
    }
    return (int) n;
  }
}
