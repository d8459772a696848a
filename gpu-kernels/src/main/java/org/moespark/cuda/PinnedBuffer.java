package org.moespark.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Page-locked host memory (cudaMallocHost) for fast, asynchronous host↔device copies; reuse it
 * across batches (pageable copies ran at 6.7–15 GB/s on the H100 machine against 49–52 GB/s pinned).
 */
public final class PinnedBuffer implements AutoCloseable {
  private long address;
  private final long size;
  private final ByteBuffer view;

  private PinnedBuffer(long address, long size) {
    this.address = address;
    this.size = size;
    this.view = size == 0 ? ByteBuffer.allocateDirect(0) : Cuda.wrapAddress(address, size).order(ByteOrder.LITTLE_ENDIAN);
  }

  public static PinnedBuffer allocate(long bytes) {
    NativeLibrary.requireAvailable();
    if (bytes < 0 || bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("pinned buffer size must be in [0, 2^31): " + bytes);
    }
    return new PinnedBuffer(bytes == 0 ? 0 : Cuda.mallocHost(bytes), bytes);
  }

  public long address() {
    if (address == 0 && size != 0) {
      throw new IllegalStateException("pinned buffer already closed");
    }
    return address;
  }

  public long size() {
    return size;
  }

  /** A little-endian view of the whole buffer (valid until close). */
  public ByteBuffer buffer() {
    return view.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  void checkRange(long offset, long bytes) {
    if (offset < 0 || bytes < 0 || offset + bytes > size) {
      throw new IllegalArgumentException("range [" + offset + ", " + (offset + bytes) + ") outside a pinned buffer of " + size + " bytes");
    }
  }

  @Override
  public void close() {
    if (address != 0) {
      Cuda.freeHost(address);
      address = 0;
    }
  }
}
