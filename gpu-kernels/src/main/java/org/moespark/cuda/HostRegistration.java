package org.moespark.cuda;

/**
 * Page-locks an existing host memory range (cudaHostRegister) for as long as this object is open, so that
 * asynchronous copies to and from it run as DMA at pinned-memory speed. For memory the caller owns and
 * keeps (an off-heap Spark column vector that results are copied into): device→host copies then land in
 * place, and the CPU never reads a separate pinned buffer (on the GPU machine's VM, CPU reads of
 * cudaMallocHost memory ran far slower than reads of ordinary memory, benchmarks/spark-gpu.md).
 * The range must stay allocated until {@link #close}.
 */
public final class HostRegistration implements AutoCloseable {
  private long address;
  private final long size;

  private HostRegistration(long address, long size) {
    this.address = address;
    this.size = size;
  }

  /** Registers {@code [address, address + bytes)}; {@code bytes > 0}, {@code address != 0}. */
  public static HostRegistration register(long address, long bytes) {
    NativeLibrary.requireAvailable();
    if (address == 0 || bytes <= 0) {
      throw new IllegalArgumentException("host registration needs a non-null address and bytes > 0, got address "
          + address + ", " + bytes + " bytes");
    }
    Cuda.hostRegister(address, bytes);
    return new HostRegistration(address, bytes);
  }

  public long address() {
    return address;
  }

  public long size() {
    return size;
  }

  /** Whether {@code [a, a + bytes)} lies inside this (open) registration. */
  public boolean covers(long a, long bytes) {
    return address != 0 && a >= address && a + bytes <= address + size;
  }

  @Override
  public void close() {
    if (address != 0) {
      Cuda.hostUnregister(address);
      address = 0;
    }
  }
}
