package org.moespark.cuda;

/**
 * An owned CUDA event (timing enabled): marks a point in a stream's work, so that a host thread can wait
 * for exactly that work ({@link #synchronize}) and read how long the work between two events took on the
 * device ({@link #elapsedMsSince}). Used to pipeline copies on one stream against compute on another.
 */
public final class CudaEvent implements AutoCloseable {
  private long handle;

  private CudaEvent(long handle) {
    this.handle = handle;
  }

  public static CudaEvent create() {
    NativeLibrary.requireAvailable();
    return new CudaEvent(Cuda.eventCreate());
  }

  private long handle() {
    if (handle == 0) {
      throw new IllegalStateException("CUDA event already closed");
    }
    return handle;
  }

  /** Records the event after the work enqueued on {@code stream} so far. */
  public void record(CudaStream stream) {
    Cuda.eventRecord(handle(), stream.handle());
  }

  /** Blocks until the work recorded before this event is complete. */
  public void synchronize() {
    Cuda.eventSynchronize(handle());
  }

  /**
   * Device milliseconds from {@code start} to this event (both recorded); waits for this event first.
   */
  public float elapsedMsSince(CudaEvent start) {
    return Cuda.eventElapsedMs(start.handle(), handle());
  }

  @Override
  public void close() {
    if (handle != 0) {
      Cuda.eventDestroy(handle);
      handle = 0;
    }
  }
}
