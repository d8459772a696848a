package org.moespark.ops;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;

/** Device-buffer checks and scratch layout shared by the TE GPU twins (package-private). */
final class TeGpuSupport {
  /** No error: the value the device validation flags are pre-set to. */
  static final int NONE = Integer.MAX_VALUE;

  private TeGpuSupport() {}

  /** The buffer must exist and hold at least {@code bytes}. */
  static void fits(String tensor, DeviceBuffer b, long bytes) {
    TeChecks.notNull(b, tensor);
    if (b.size() < bytes) {
      throw new IllegalArgumentException(
          tensor + ": needs " + bytes + " bytes on the device, but the buffer has " + b.size());
    }
  }

  /** {@code rows * cols} as a long (both non-negative ints: cannot overflow). */
  static long elements(long rows, long cols) {
    return rows * cols;
  }

  static long align256(long n) {
    return (n + 255) & ~255L;
  }

  /** Reads back one int32 flag (synchronizes the allocator's stream). */
  static int readFlag(DeviceBuffer flag) {
    return flag.toInts(1)[0];
  }

  /** Allocates a device flag buffer (4 bytes, padded to 256). */
  static DeviceBuffer flag(DeviceAllocator alloc, String what) {
    return alloc.allocate(256, what);
  }

  /** Closes {@code b} (if not null) and rethrows {@code e}. */
  static RuntimeException closeAndRethrow(RuntimeException e, AutoCloseable... buffers) {
    for (AutoCloseable b : buffers) {
      if (b != null) {
        try {
          b.close();
        } catch (Exception suppressed) {
          e.addSuppressed(suppressed);
        }
      }
    }
    return e;
  }
}
