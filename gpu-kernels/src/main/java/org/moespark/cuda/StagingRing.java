package org.moespark.cuda;

/**
 * Small host-to-device copies that do not stop the stream: each goes through one of a few pinned slots
 * (a {@code cudaMemcpyAsync} from pinned memory returns at once), and a slot is written again only after
 * the event recorded behind its last copy has completed. A pageable copy ({@link DeviceBuffer#copyFrom})
 * has to synchronize the stream instead (the Java array may move once the copy call returns), which puts a
 * gap of launch latency into the device timeline every time: the grouped GEMMs upload their segment
 * tables once per call. Not thread-safe; the owning {@link DeviceAllocator} serializes the calls.
 */
final class StagingRing implements AutoCloseable {
  /** Slots in flight before a copy waits for the oldest: one layer call uploads three tables. */
  static final int SLOTS = 8;

  private final PinnedBuffer[] slots = new PinnedBuffer[SLOTS];
  private final CudaEvent[] copied = new CudaEvent[SLOTS];
  private int next;

  /** Copies {@code data} into {@code dst} (at least {@code 4·data.length} bytes) asynchronously on {@code stream}. */
  void copy(int[] data, DeviceBuffer dst, CudaStream stream) {
    long bytes = 4L * data.length;
    if (bytes == 0) {
      return;
    }
    int s = next;
    next = (next + 1) % SLOTS;
    if (copied[s] != null) {
      copied[s].synchronize(); // the copy that last read this slot has run (usually long ago)
    } else {
      copied[s] = CudaEvent.create();
    }
    if (slots[s] == null || slots[s].size() < bytes) {
      if (slots[s] != null) {
        slots[s].close();
      }
      slots[s] = PinnedBuffer.allocate(Math.max(bytes, 16 << 10));
    }
    slots[s].buffer().asIntBuffer().put(data);
    dst.copyFromAsync(slots[s], 0, 0, bytes, stream);
    copied[s].record(stream);
  }

  /** Waits for every copy still reading a slot, then frees the slots. */
  @Override
  public void close() {
    for (int s = 0; s < SLOTS; s++) {
      if (copied[s] != null) {
        copied[s].synchronize();
        copied[s].close();
        copied[s] = null;
      }
      if (slots[s] != null) {
        slots[s].close();
        slots[s] = null;
      }
    }
  }
}
