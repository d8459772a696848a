package org.moespark.cuda;

/**
 * Device buffers that own no memory, for the CPU tests of GPU API argument checks: they report a
 * size and an address but must never reach a kernel (the checks under test throw first, and without
 * a GPU {@link NativeLibrary#requireAvailable()} stops every launch).
 */
public final class FakeDeviceBuffers {
  private FakeDeviceBuffers() {}

  /** A fake buffer of {@code bytes} bytes at a dummy 256-byte aligned address. */
  public static DeviceBuffer of(long bytes) {
    return new DeviceBuffer(null, 0x10000L, bytes);
  }
}
