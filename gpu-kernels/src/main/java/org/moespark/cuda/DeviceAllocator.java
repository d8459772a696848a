package org.moespark.cuda;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Stream-ordered device allocator (cudaMallocAsync / cudaFreeAsync) that tracks what it handed out.
 * {@link #close()} reports buffers that were never closed (and frees them) with an
 * {@link IllegalStateException} naming each leak and where it was allocated.
 */
public final class DeviceAllocator implements AutoCloseable {
  private final String name;
  private final CudaStream stream;
  private final Map<DeviceBuffer, String> live = new LinkedHashMap<>();
  private final AtomicLong bytesLive = new AtomicLong();
  private long peakBytes;
  private boolean closed;

  /** An allocator whose buffers are allocated and freed in order on {@code stream}. */
  public DeviceAllocator(String name, CudaStream stream) {
    NativeLibrary.requireAvailable();
    this.name = name;
    this.stream = stream;
    int device = Cuda.currentDevice();
    synchronized (POOLS_CONFIGURED) {
      if (POOLS_CONFIGURED.add(device)) {
        Cuda.retainPoolMemory(device);
      }
    }
  }

  /** Devices whose default memory pool already keeps freed memory (configured once per process). */
  private static final java.util.Set<Integer> POOLS_CONFIGURED = new java.util.HashSet<>();

  public CudaStream stream() {
    return stream;
  }

  /** Allocates {@code bytes} of device memory (a zero-byte request gives a valid empty buffer). */
  public synchronized DeviceBuffer allocate(long bytes, String what) {
    if (closed) {
      throw new IllegalStateException("allocator '" + name + "' is closed");
    }
    if (bytes < 0) {
      throw new IllegalArgumentException("negative allocation size for " + what + ": " + bytes);
    }
    long addr = bytes == 0 ? 0 : Cuda.mallocAsync(bytes, stream.handle());
    DeviceBuffer b = new DeviceBuffer(this, addr, bytes);
    live.put(b, what + " (" + bytes + " bytes)");
    peakBytes = Math.max(peakBytes, bytesLive.addAndGet(bytes));
    return b;
  }

  /** Allocates and copies {@code data} in. */
  public DeviceBuffer upload(float[] data, String what) {
    DeviceBuffer b = allocate(4L * data.length, what);
    b.copyFrom(data);
    return b;
  }

  public DeviceBuffer upload(int[] data, String what) {
    DeviceBuffer b = allocate(4L * data.length, what);
    b.copyFrom(data);
    return b;
  }

  /**
   * Allocates and copies {@code data} in without synchronizing the stream (through pinned staging slots,
   * {@link StagingRing}): for the small tables enqueued with every kernel call (a GEMM's segment offsets),
   * where {@link #upload(int[], String)}'s pageable copy would leave the device idle for a host round trip.
   * The contents are read on the stream, in order: the buffer is valid for the work enqueued after this call.
   */
  public synchronized DeviceBuffer uploadAsync(int[] data, String what) {
    DeviceBuffer b = allocate(4L * data.length, what);
    try {
      if (staging == null) {
        staging = new StagingRing();
      }
      staging.copy(data, b, stream);
    } catch (RuntimeException e) {
      b.close();
      throw e;
    }
    return b;
  }

  /** uploadAsync's pinned slots, created on first use. */
  private StagingRing staging;

  public DeviceBuffer upload(short[] data, String what) {
    DeviceBuffer b = allocate(2L * data.length, what);
    b.copyFrom(data);
    return b;
  }

  public DeviceBuffer upload(byte[] data, String what) {
    DeviceBuffer b = allocate(data.length, what);
    b.copyFrom(data);
    return b;
  }

  synchronized void release(DeviceBuffer b) {
    if (live.remove(b) != null) {
      bytesLive.addAndGet(-b.size());
      if (b.address() != 0) {
        Cuda.freeAsync(b.address(), stream.handle());
      }
    }
  }

  public long bytesInUse() {
    return bytesLive.get();
  }

  public synchronized long peakBytes() {
    return peakBytes;
  }

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    List<String> leaks = new ArrayList<>(live.values());
    for (DeviceBuffer b : new ArrayList<>(live.keySet())) {
      b.close();
    }
    stream.synchronize();
    if (staging != null) {
      staging.close();
      staging = null;
    }
    closed = true;
    if (!leaks.isEmpty()) {
      throw new IllegalStateException("allocator '" + name + "' closed with " + leaks.size()
          + " device buffer(s) still open: " + leaks);
    }
  }
}
