package org.moespark.cuda;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Thin, checked access to the CUDA runtime (device discovery, memory, copies, events). Every method
 * except {@link #probe()} requires {@link NativeLibrary#isAvailable()}; most code uses the owning
 * wrappers ({@link CudaStream}, {@link DeviceAllocator}, {@link DeviceBuffer}, {@link PinnedBuffer}).
 */
public final class Cuda {
  private Cuda() {}

  /** cudaMemcpyKind values. */
  static final int H2D = 1;
  static final int D2H = 2;
  static final int D2D = 3;

  /** Information about one device. */
  public record DeviceInfo(int index, String name, int major, int minor, long totalMemory, int smCount) {
    @Override
    public String toString() {
      return String.format("GPU %d: %s, sm_%d%d, %d SMs, %.1f GiB", index, name, major, minor, smCount,
          totalMemory / (double) (1L << 30));
    }
  }

  static String probe() {
    return probe0();
  }

  public static int deviceCount() {
    NativeLibrary.requireAvailable();
    return deviceCount0();
  }

  public static DeviceInfo deviceInfo(int device) {
    NativeLibrary.requireAvailable();
    String[] f = deviceInfo0(device).split("\\|");
    return new DeviceInfo(device, f[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), Long.parseLong(f[3]),
        Integer.parseInt(f[4]));
  }

  /** Driver and runtime versions as "driver 13.0, runtime 13.0". */
  public static String versions() {
    NativeLibrary.requireAvailable();
    int d = driverVersion0();
    int r = runtimeVersion0();
    return String.format("CUDA driver %d.%d, runtime %d.%d", d / 1000, (d % 1000) / 10, r / 1000, (r % 1000) / 10);
  }

  static String describeDevices() {
    List<String> parts = new ArrayList<>();
    int n = deviceCount0();
    for (int i = 0; i < n; i++) {
      parts.add(deviceInfo(i).toString());
    }
    parts.add(versions());
    return String.join("; ", parts);
  }

  public static void setDevice(int device) {
    NativeLibrary.requireAvailable();
    int n = deviceCount0();
    if (device < 0 || device >= n) {
      throw new IllegalArgumentException("CUDA device " + device + " does not exist (" + n + " devices)");
    }
    setDevice0(device);
  }

  public static int currentDevice() {
    NativeLibrary.requireAvailable();
    return getDevice0();
  }

  /** {free, total} bytes on the current device. */
  public static long[] memInfo() {
    NativeLibrary.requireAvailable();
    return memInfo0();
  }

  public static void deviceSynchronize() {
    NativeLibrary.requireAvailable();
    deviceSynchronize0();
  }

  // ---- package-private entry points for the owning wrappers ----
  static long streamCreate() { return streamCreate0(); }
  static void streamDestroy(long s) { streamDestroy0(s); }
  static void streamSynchronize(long s) { streamSynchronize0(s); }
  static long mallocAsync(long bytes, long s) { return mallocAsync0(bytes, s); }
  static void retainPoolMemory(int device) { retainPoolMemory0(device); }
  static void freeAsync(long p, long s) { freeAsync0(p, s); }
  static long mallocHost(long bytes) { return mallocHost0(bytes); }
  static void freeHost(long p) { freeHost0(p); }
  static ByteBuffer wrapAddress(long addr, long bytes) { return wrapAddress0(addr, bytes); }
  static void memcpyAsync(long dst, long src, long bytes, int kind, long s) { memcpyAsync0(dst, src, bytes, kind, s); }
  static void memsetAsync(long p, int v, long bytes, long s) { memsetAsync0(p, v, bytes, s); }
  static void copyArrayToDevice(Object a, long off, long dev, long bytes, long s) { copyArrayToDevice0(a, off, dev, bytes, s); }
  static void copyDeviceToArray(long dev, Object a, long off, long bytes, long s) { copyDeviceToArray0(dev, a, off, bytes, s); }
  static long eventCreate() { return eventCreate0(); }
  static void eventDestroy(long e) { eventDestroy0(e); }
  static void eventRecord(long e, long s) { eventRecord0(e, s); }
  static float eventElapsedMs(long a, long b) { return eventElapsedMs0(a, b); }
  static void eventSynchronize(long e) { eventSynchronize0(e); }

  private static native String probe0();
  private static native int deviceCount0();
  private static native String deviceInfo0(int device);
  private static native int driverVersion0();
  private static native int runtimeVersion0();
  private static native void setDevice0(int device);
  private static native int getDevice0();
  private static native long[] memInfo0();
  private static native void deviceSynchronize0();
  private static native long streamCreate0();
  private static native void streamDestroy0(long s);
  private static native void streamSynchronize0(long s);
  private static native long mallocAsync0(long bytes, long s);
  private static native void retainPoolMemory0(int device);
  private static native void freeAsync0(long p, long s);
  private static native long mallocHost0(long bytes);
  private static native void freeHost0(long p);
  private static native ByteBuffer wrapAddress0(long addr, long bytes);
  private static native void memcpyAsync0(long dst, long src, long bytes, int kind, long s);
  private static native void memsetAsync0(long p, int v, long bytes, long s);
  private static native void copyArrayToDevice0(Object a, long off, long dev, long bytes, long s);
  private static native void copyDeviceToArray0(long dev, Object a, long off, long bytes, long s);
  private static native long eventCreate0();
  private static native void eventDestroy0(long e);
  private static native void eventRecord0(long e, long s);
  private static native float eventElapsedMs0(long a, long b);
  private static native void eventSynchronize0(long e);
}
