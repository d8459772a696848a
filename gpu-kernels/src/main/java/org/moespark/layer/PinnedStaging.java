package org.moespark.layer;

import org.moespark.cuda.Cuda;
import org.moespark.cuda.CudaEvent;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.PinnedBuffer;

/**
 * Double-buffered page-locked staging in front of {@link MoeLayerGpu#forwardDevice}, for callers that
 * produce rows on the host chunk by chunk (the Spark operator packs column vectors straight into
 * {@link #inputAddress}). Two slots, each with a pinned input and output and their device twins; copies
 * run on this object's own copy stream, the layer on the layer's stream:
 *
 * <pre>
 *   host:         pack(i+1) → slot (i+1)%2          unpack(i-1) ← slot (i-1)%2
 *   copy stream:  H2D(i+1) ────────────────          D2H(i-1) ─────
 *   layer stream:            forwardDevice(i) ─────────────────────
 * </pre>
 *
 * Per slot: {@link #upload} (async H2D, returns at once) → {@link #compute} (waits for that H2D only, runs
 * the layer, enqueues the D2H of y, returns the routing) → {@link #awaitOutput} (waits for that D2H; y is
 * then readable at {@link #outputAddress} until the slot's next compute). The input of a slot may be
 * rewritten once its {@link #compute} has returned.
 *
 * <p>One instance per host thread (not thread-safe); any number of instances may share one layer:
 * {@code forwardDevice} serializes on the layer, and while one caller computes, the others' copies run
 * on their own streams (the copy engines overlap them with the compute). Timings are reported per call:
 * copy times are device time between events on the copy stream (they overlap compute, so they do not
 * add up with it), compute is wall time inside the layer's lock (forwardDevice is synchronous), wait is
 * host time spent blocked on the lock or on copies.
 */
public final class PinnedStaging implements AutoCloseable {
  private final MoeLayerGpu layer;
  private final int capacity;
  private final int hidden;
  private final CudaStream copy;
  private final DeviceAllocator alloc;
  private final Slot[] slots = new Slot[2];
  private boolean closed;

  private enum State { FREE, UPLOADING, OUTPUT_PENDING }

  private static final class Slot {
    PinnedBuffer xh;
    PinnedBuffer yh;
    DeviceBuffer xd;
    DeviceBuffer yd;
    CudaEvent h2dStart;
    CudaEvent h2dEnd;
    CudaEvent d2hStart;
    CudaEvent d2hEnd;
    int rows;
    State state = State.FREE;
  }

  /** The routing of one chunk and where its time went (nanoseconds). */
  public record Result(int rows, int[] topkIds, float[] topkWeights, long hostToDeviceNanos, long computeNanos,
      long waitNanos) {}

  private PinnedStaging(MoeLayerGpu layer, int capacity) {
    this.layer = layer;
    this.capacity = capacity;
    this.hidden = layer.hiddenSize();
    Cuda.setDevice(layer.device());
    this.copy = CudaStream.create();
    this.alloc = new DeviceAllocator("pinned staging", copy);
  }

  /**
   * Allocates two slots of {@code capacity} rows of fp32 {@code [capacity, H]} in pinned host memory and
   * on the layer's device (4 × 4·capacity·H bytes each side), so that no cudaMallocHost (which synchronizes
   * the device) happens while chunks stream.
   */
  public static PinnedStaging create(MoeLayerGpu layer, int capacity) {
    if (layer == null) {
      throw new IllegalArgumentException("PinnedStaging: layer must not be null");
    }
    long bytes = 4L * capacity * layer.hiddenSize();
    if (capacity <= 0 || bytes > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("PinnedStaging: capacity must be in [1, 2^31 / (4·hidden=" + 4L * layer.hiddenSize()
          + ")] rows, got " + capacity);
    }
    PinnedStaging s = new PinnedStaging(layer, capacity);
    try {
      for (int i = 0; i < 2; i++) {
        Slot sl = new Slot();
        s.slots[i] = sl;
        sl.xh = PinnedBuffer.allocate(bytes);
        sl.yh = PinnedBuffer.allocate(bytes);
        sl.xd = s.alloc.allocate(bytes, "staged x fp32, slot " + i);
        sl.yd = s.alloc.allocate(bytes, "staged y fp32, slot " + i);
        sl.h2dStart = CudaEvent.create();
        sl.h2dEnd = CudaEvent.create();
        sl.d2hStart = CudaEvent.create();
        sl.d2hEnd = CudaEvent.create();
      }
      s.copy.synchronize();
      return s;
    } catch (RuntimeException e) {
      try {
        s.close();
      } catch (RuntimeException e2) {
        e.addSuppressed(e2);
      }
      throw e;
    }
  }

  /** Rows per slot. */
  public int capacity() {
    return capacity;
  }

  public int hiddenSize() {
    return hidden;
  }

  /** The layer this staging feeds. */
  public MoeLayerGpu layer() {
    return layer;
  }

  /** Native address of slot {@code slot}'s pinned input, fp32 {@code [capacity, H]} row-major, native order. */
  public long inputAddress(int slot) {
    Slot s = slot(slot);
    if (s.state == State.UPLOADING) {
      throw new IllegalStateException("PinnedStaging: slot " + slot + "'s input is being uploaded (compute it first)");
    }
    return s.xh.address();
  }

  /** Slot {@code slot}'s pinned input as a little-endian buffer (same memory as {@link #inputAddress}). */
  public java.nio.ByteBuffer inputBuffer(int slot) {
    inputAddress(slot); // state check
    return slots[slot].xh.buffer();
  }

  /** Slot {@code slot}'s pinned output as a little-endian buffer (same memory as {@link #outputAddress}). */
  public java.nio.ByteBuffer outputBuffer(int slot) {
    return slot(slot).yh.buffer();
  }

  /** Native address of slot {@code slot}'s pinned output y, fp32 {@code [rows, H]}; valid after {@link #awaitOutput}. */
  public long outputAddress(int slot) {
    return slot(slot).yh.address();
  }

  /** Enqueues the host→device copy of the first {@code rows} rows of the slot's input; returns at once. */
  public void upload(int slot, int rows) {
    Slot s = slot(slot);
    if (rows < 0 || rows > capacity) {
      throw new IllegalArgumentException("PinnedStaging: rows must be in [0, " + capacity + "], got " + rows);
    }
    if (s.state != State.FREE) {
      throw new IllegalStateException("PinnedStaging: slot " + slot + " is " + s.state + ", not free (awaitOutput first)");
    }
    Cuda.setDevice(layer.device());
    long bytes = 4L * rows * hidden;
    s.h2dStart.record(copy);
    s.xd.copyFromAsync(s.xh, 0, 0, bytes, copy);
    s.h2dEnd.record(copy);
    s.rows = rows;
    s.state = State.UPLOADING;
  }

  /**
   * Runs the layer on the slot's uploaded rows: waits for its upload, runs {@link MoeLayerGpu#forwardDevice}
   * (device routing), and enqueues the device→host copy of y into the slot's pinned output; returns the routing.
   */
  public Result compute(int slot) {
    Slot s = slot(slot);
    if (s.state != State.UPLOADING) {
      throw new IllegalStateException("PinnedStaging: slot " + slot + " is " + s.state + ", not uploaded");
    }
    Cuda.setDevice(layer.device());
    long w0 = System.nanoTime();
    s.h2dEnd.synchronize();
    long h2d = (long) (s.h2dEnd.elapsedMsSince(s.h2dStart) * 1e6);
    long wait = System.nanoTime() - w0;
    MoeLayer.Output o;
    long computeNanos;
    long l0 = System.nanoTime();
    synchronized (layer) { // the layer's own lock (reentrant in forwardDevice): compute time excludes waiting for it
      long c0 = System.nanoTime();
      wait += c0 - l0;
      o = layer.forwardDevice(s.xd, s.rows, s.yd);
      computeNanos = System.nanoTime() - c0;
    }
    long bytes = 4L * s.rows * hidden;
    s.d2hStart.record(copy);
    s.yd.copyToAsync(s.yh, 0, 0, bytes, copy);
    s.d2hEnd.record(copy);
    s.state = State.OUTPUT_PENDING;
    return new Result(s.rows, o.topkIds(), o.topkWeights(), h2d, computeNanos, wait);
  }

  /** Waits for the slot's device→host copy of y; returns its device time in nanoseconds. The slot is then free. */
  public long awaitOutput(int slot) {
    Slot s = slot(slot);
    if (s.state != State.OUTPUT_PENDING) {
      throw new IllegalStateException("PinnedStaging: slot " + slot + " is " + s.state + ", no output pending");
    }
    s.d2hEnd.synchronize();
    s.state = State.FREE;
    return (long) (s.d2hEnd.elapsedMsSince(s.d2hStart) * 1e6);
  }

  /**
   * Waits for every copy in flight and frees both slots (results not awaited are dropped): after a task
   * failed midway, before the staging goes back to a pool and before memory the copies target is freed.
   */
  public void reset() {
    if (closed) {
      return;
    }
    Cuda.setDevice(layer.device());
    copy.synchronize();
    for (Slot s : slots) {
      s.state = State.FREE;
    }
  }

  /** Rows of the slot's last upload. */
  public int rows(int slot) {
    return slot(slot).rows;
  }

  private Slot slot(int slot) {
    if (closed) {
      throw new IllegalStateException("PinnedStaging already closed");
    }
    if (slot != 0 && slot != 1) {
      throw new IllegalArgumentException("PinnedStaging: slot must be 0 or 1, got " + slot);
    }
    return slots[slot];
  }

  /** Waits for pending copies and frees the pinned and device buffers. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    Cuda.setDevice(layer.device());
    copy.synchronize();
    try {
      for (Slot s : slots) {
        if (s == null) {
          continue;
        }
        for (AutoCloseable c : new AutoCloseable[] {s.xd, s.yd, s.xh, s.yh, s.h2dStart, s.h2dEnd, s.d2hStart,
            s.d2hEnd}) {
          if (c != null) {
            try {
              c.close();
            } catch (Exception e) {
              throw new IllegalStateException("PinnedStaging.close: " + e.getMessage(), e);
            }
          }
        }
      }
    } finally {
      try {
        alloc.close();
      } finally {
        copy.close();
      }
    }
  }
}
