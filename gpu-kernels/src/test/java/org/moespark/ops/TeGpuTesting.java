package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.testing.Tolerance;

/** Test helpers for the TE GPU twins: device round trips and bit-exact comparisons. */
final class TeGpuTesting {
  private TeGpuTesting() {}

  /** Uploads fp32 values into a new device buffer (an empty array gives an empty buffer). */
  static DeviceBuffer up(DeviceAllocator alloc, float[] a) {
    return alloc.upload(a, "test fp32");
  }

  static DeviceBuffer up(DeviceAllocator alloc, short[] a) {
    return alloc.upload(a, "test bf16");
  }

  static DeviceBuffer up(DeviceAllocator alloc, int[] a) {
    return alloc.upload(a, "test int32");
  }

  static DeviceBuffer up(DeviceAllocator alloc, byte[] a) {
    return alloc.upload(a, "test bytes");
  }

  static void assertFloats(float[] expected, DeviceBuffer actual, String what) {
    Tolerance.assertBitEqual(actual.toFloats(expected.length), expected, what);
  }

  static void assertShorts(short[] expected, DeviceBuffer actual, String what) {
    TeTestSupport.assertShortsEqual(expected, actual.toShorts(expected.length), what);
  }

  static void assertInts(int[] expected, DeviceBuffer actual, String what) {
    assertArrayEquals(expected, actual.toInts(expected.length), what);
  }
}
