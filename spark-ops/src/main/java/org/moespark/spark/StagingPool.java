package org.moespark.spark;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import org.moespark.layer.MoeLayerGpu;
import org.moespark.layer.PinnedStaging;

/**
 * Per-executor pool of {@link PinnedStaging} (pinned host + device buffers, a copy stream) per GPU layer:
 * a task borrows one for its partition and gives it back when the partition is done, so pinned memory is
 * allocated once per concurrently running task, not once per task (cudaMallocHost of hundreds of MB takes
 * tens of milliseconds). Staging lives as long as the executor, like the layer it feeds (ModelCache).
 */
final class StagingPool {
  private static final Map<MoeLayerGpu, ConcurrentLinkedDeque<PinnedStaging>> FREE = new ConcurrentHashMap<>();

  private StagingPool() {}

  /** A staging for {@code layer} with at least {@code rows} rows per slot. */
  static PinnedStaging borrow(MoeLayerGpu layer, int rows) {
    ConcurrentLinkedDeque<PinnedStaging> q = FREE.computeIfAbsent(layer, k -> new ConcurrentLinkedDeque<>());
    PinnedStaging s;
    while ((s = q.pollFirst()) != null) {
      if (s.capacity() >= rows) {
        return s;
      }
      s.close(); // a smaller batch size was used before: replace it
    }
    return PinnedStaging.create(layer, rows);
  }

  /** Returns {@code s} to the pool, after waiting for its copies (a failed task may leave some in flight). */
  static void giveBack(PinnedStaging s) {
    s.reset();
    FREE.computeIfAbsent(s.layer(), k -> new ConcurrentLinkedDeque<>()).addFirst(s);
  }
}
