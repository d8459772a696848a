package org.moespark.spark;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;

/**
 * Per-executor pool of {@link Staging}s (on a GPU: pinned host + device buffers, a copy stream) per scorer:
 * a task borrows one for its partition and gives it back when the partition is done, so pinned memory is
 * allocated once per concurrently running task, not once per task (cudaMallocHost of hundreds of MB takes
 * tens of milliseconds). Staging lives as long as the executor, like the scorer it feeds (ModelCache).
 */
final class StagingPool {
  private static final Map<BatchScorer, ConcurrentLinkedDeque<Staging>> FREE = new ConcurrentHashMap<>();

  private StagingPool() {}

  /** A staging for {@code scorer} (a {@link BatchScorer#staged} one) with at least {@code rows} rows per slot. */
  static Staging borrow(BatchScorer scorer, int rows) {
    ConcurrentLinkedDeque<Staging> q = FREE.computeIfAbsent(scorer, k -> new ConcurrentLinkedDeque<>());
    Staging s;
    while ((s = q.pollFirst()) != null) {
      if (s.capacity() >= rows) {
        return s;
      }
      s.close(); // a smaller batch size was used before: replace it
    }
    return scorer.newStaging(rows);
  }

  /**
   * Returns {@code s}, borrowed for {@code scorer}, to the pool, after waiting for its copies (a failed task
   * may leave some in flight).
   */
  static void giveBack(BatchScorer scorer, Staging s) {
    s.reset();
    FREE.computeIfAbsent(scorer, k -> new ConcurrentLinkedDeque<>()).addFirst(s);
  }
}
