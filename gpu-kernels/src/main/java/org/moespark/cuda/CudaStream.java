package org.moespark.cuda;

/** An owned, non-blocking CUDA stream. Native entry points take {@link #handle()}. */
public final class CudaStream implements AutoCloseable {
  private long handle;

  private CudaStream(long handle) {
    this.handle = handle;
  }

  public static CudaStream create() {
    NativeLibrary.requireAvailable();
    return new CudaStream(Cuda.streamCreate());
  }

  public long handle() {
    if (handle == 0) {
      throw new IllegalStateException("CUDA stream already closed");
    }
    return handle;
  }

  public void synchronize() {
    Cuda.streamSynchronize(handle());
  }

  /** Milliseconds of device time spent by {@code work} on this stream (CUDA events). */
  public float time(Runnable work) {
    long a = Cuda.eventCreate();
    long b = Cuda.eventCreate();
    try {
      Cuda.eventRecord(a, handle());
      work.run();
      Cuda.eventRecord(b, handle());
      return Cuda.eventElapsedMs(a, b);
    } finally {
      Cuda.eventDestroy(a);
      Cuda.eventDestroy(b);
    }
  }

  @Override
  public void close() {
    if (handle != 0) {
      Cuda.streamSynchronize(handle);
      Cuda.streamDestroy(handle);
      handle = 0;
    }
  }
}
