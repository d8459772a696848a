package org.moespark.cuda;

/**
 * Device memory owned by a {@link DeviceAllocator}. Copies to and from Java arrays are synchronous
 * on the allocator's stream; kernels take {@link #address()}.
 */
public final class DeviceBuffer implements AutoCloseable {
  private final DeviceAllocator owner;
  private final DeviceBuffer parent;  // non-null for views
  private final long address;
  private final long size;
  private boolean closed;

  DeviceBuffer(DeviceAllocator owner, long address, long size) {
    this(owner, null, address, size);
  }

  private DeviceBuffer(DeviceAllocator owner, DeviceBuffer parent, long address, long size) {
    this.owner = owner;
    this.parent = parent;
    this.address = address;
    this.size = size;
  }

  /**
   * A view of {@code [offset, offset + bytes)} of this buffer: valid while this buffer is open;
   * closing the view does nothing. Lets one allocation back several tensors (each allocation costs
   * microseconds, which matter at small batch sizes).
   */
  public DeviceBuffer view(long offset, long bytes) {
    checkRange(offset, bytes);
    return new DeviceBuffer(owner, this, address() + offset, bytes);
  }

  public long address() {
    if (closed || (parent != null && parent.closed)) {
      throw new IllegalStateException("device buffer already closed");
    }
    return address;
  }

  public long size() {
    return size;
  }

  private long stream() {
    return owner.stream().handle();
  }

  private void checkFits(long bytes, String op) {
    if (bytes > size) {
      throw new IllegalArgumentException(op + ": " + bytes + " bytes do not fit in a device buffer of " + size + " bytes");
    }
  }

  public void copyFrom(float[] src) { checkFits(4L * src.length, "copyFrom(float[])"); Cuda.copyArrayToDevice(src, 0, address(), 4L * src.length, stream()); }
  public void copyFrom(int[] src) { checkFits(4L * src.length, "copyFrom(int[])"); Cuda.copyArrayToDevice(src, 0, address(), 4L * src.length, stream()); }
  public void copyFrom(short[] src) { checkFits(2L * src.length, "copyFrom(short[])"); Cuda.copyArrayToDevice(src, 0, address(), 2L * src.length, stream()); }
  public void copyFrom(byte[] src) { checkFits(src.length, "copyFrom(byte[])"); Cuda.copyArrayToDevice(src, 0, address(), src.length, stream()); }
  public void copyFrom(long[] src) { checkFits(8L * src.length, "copyFrom(long[])"); Cuda.copyArrayToDevice(src, 0, address(), 8L * src.length, stream()); }

  public void copyTo(float[] dst) { checkFits(4L * dst.length, "copyTo(float[])"); Cuda.copyDeviceToArray(address(), dst, 0, 4L * dst.length, stream()); }
  public void copyTo(int[] dst) { checkFits(4L * dst.length, "copyTo(int[])"); Cuda.copyDeviceToArray(address(), dst, 0, 4L * dst.length, stream()); }
  public void copyTo(short[] dst) { checkFits(2L * dst.length, "copyTo(short[])"); Cuda.copyDeviceToArray(address(), dst, 0, 2L * dst.length, stream()); }
  public void copyTo(byte[] dst) { checkFits(dst.length, "copyTo(byte[])"); Cuda.copyDeviceToArray(address(), dst, 0, dst.length, stream()); }
  public void copyTo(long[] dst) { checkFits(8L * dst.length, "copyTo(long[])"); Cuda.copyDeviceToArray(address(), dst, 0, 8L * dst.length, stream()); }

  public float[] toFloats(int n) { float[] a = new float[n]; copyTo(a); return a; }
  public int[] toInts(int n) { int[] a = new int[n]; copyTo(a); return a; }
  public short[] toShorts(int n) { short[] a = new short[n]; copyTo(a); return a; }
  public byte[] toBytes(int n) { byte[] a = new byte[n]; copyTo(a); return a; }

  /** Asynchronous host→device copy from pinned memory (overlaps with compute on other streams). */
  public void copyFromAsync(PinnedBuffer src, long srcOffset, long dstOffset, long bytes, CudaStream stream) {
    checkRange(dstOffset, bytes);
    src.checkRange(srcOffset, bytes);
    Cuda.memcpyAsync(address() + dstOffset, src.address() + srcOffset, bytes, Cuda.H2D, stream.handle());
  }

  /** Asynchronous device→host copy into pinned memory. */
  public void copyToAsync(PinnedBuffer dst, long dstOffset, long srcOffset, long bytes, CudaStream stream) {
    checkRange(srcOffset, bytes);
    dst.checkRange(dstOffset, bytes);
    Cuda.memcpyAsync(dst.address() + dstOffset, address() + srcOffset, bytes, Cuda.D2H, stream.handle());
  }

  /** Asynchronous device→device copy. */
  public void copyFromDevice(DeviceBuffer src, long srcOffset, long dstOffset, long bytes, CudaStream stream) {
    checkRange(dstOffset, bytes);
    src.checkRange(srcOffset, bytes);
    Cuda.memcpyAsync(address() + dstOffset, src.address() + srcOffset, bytes, Cuda.D2D, stream.handle());
  }

  public void fill(int byteValue, CudaStream stream) {
    Cuda.memsetAsync(address(), byteValue, size, stream.handle());
  }

  void checkRange(long offset, long bytes) {
    if (offset < 0 || bytes < 0 || offset + bytes > size) {
      throw new IllegalArgumentException("range [" + offset + ", " + (offset + bytes) + ") outside a device buffer of " + size + " bytes");
    }
  }

  @Override
  public void close() {
    if (!closed) {
      if (parent == null) {
        owner.release(this);
      }
      closed = true;
    }
  }
}
