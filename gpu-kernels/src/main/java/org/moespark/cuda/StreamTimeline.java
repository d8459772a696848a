package org.moespark.cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Where a sequence of stream work spends its time, for benchmarks: {@link #mark} records a CUDA event on the
 * stream and the host clock at each stage boundary; {@link #report} gives, per stage, the device time from
 * the previous mark (the stage's kernels plus any idle gap before them) and the host time (the enqueue
 * calls, plus the waits of any synchronization inside the stage). A device time well above the stage's
 * kernel durations is the device waiting for the host.
 */
public final class StreamTimeline implements AutoCloseable {
  private final List<String> stages = new ArrayList<>();
  private final List<CudaEvent> events = new ArrayList<>();
  private final List<Long> hostNanos = new ArrayList<>();

  /** Records the boundary after {@code stage}'s work on {@code stream}. */
  public synchronized void mark(String stage, CudaStream stream) {
    CudaEvent e = CudaEvent.create();
    e.record(stream);
    stages.add(stage);
    events.add(e);
    hostNanos.add(System.nanoTime());
  }

  /** One stage of a report: device and host milliseconds since the previous mark. */
  public record Stage(String name, double deviceMs, double hostMs) {}

  /** The stages after the first mark, in order; waits for the last event. */
  public synchronized List<Stage> report() {
    List<Stage> out = new ArrayList<>();
    for (int i = 1; i < events.size(); i++) {
      double dev = events.get(i).elapsedMsSince(events.get(i - 1));
      double host = (hostNanos.get(i) - hostNanos.get(i - 1)) / 1e6;
      out.add(new Stage(stages.get(i), dev, host));
    }
    return out;
  }

  /** Forgets the marks (and frees their events). */
  public synchronized void clear() {
    for (CudaEvent e : events) {
      e.close();
    }
    stages.clear();
    events.clear();
    hostNanos.clear();
  }

  @Override
  public void close() {
    clear();
  }
}
