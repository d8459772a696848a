package org.moespark.spark;

import org.apache.spark.unsafe.Platform;
import org.moespark.layer.PinnedStaging;

/**
 * {@link Staging} in plain native memory around a CPU {@link BatchScorer}: {@link #compute} reads the
 * slot's rows into an array, calls {@link BatchScorer#score} and writes y back. For scorers that want the
 * operator's staged path without a GPU (the Spark tests of that path, host-side profiling of it).
 */
final class HostStaging implements Staging {
  private final BatchScorer scorer;
  private final int capacity;
  private final int hidden;
  private final long[] in = new long[2];
  private final long[] out = new long[2];
  private final int[] rows = new int[2];
  private final boolean[] uploaded = new boolean[2];
  private final boolean[] pending = new boolean[2];
  private boolean closed;

  HostStaging(BatchScorer scorer, int capacity) {
    if (capacity <= 0) {
      throw new IllegalArgumentException("HostStaging: capacity must be > 0, got " + capacity);
    }
    this.scorer = scorer;
    this.capacity = capacity;
    this.hidden = scorer.hiddenSize();
    long bytes = 4L * capacity * hidden;
    for (int s = 0; s < 2; s++) {
      in[s] = Platform.allocateMemory(bytes);
      out[s] = Platform.allocateMemory(bytes);
    }
  }

  @Override
  public int capacity() {
    return capacity;
  }

  @Override
  public int hiddenSize() {
    return hidden;
  }

  @Override
  public long inputAddress(int slot) {
    check(slot);
    return in[slot];
  }

  @Override
  public void upload(int slot, int n) {
    check(slot);
    if (n < 0 || n > capacity) {
      throw new IllegalArgumentException("HostStaging: rows must be in [0, " + capacity + "], got " + n);
    }
    if (uploaded[slot] || pending[slot]) {
      throw new IllegalStateException("HostStaging: slot " + slot + " is busy");
    }
    rows[slot] = n;
    uploaded[slot] = true;
  }

  @Override
  public PinnedStaging.Result compute(int slot) {
    check(slot);
    if (!uploaded[slot]) {
      throw new IllegalStateException("HostStaging: slot " + slot + " is not uploaded");
    }
    int n = rows[slot];
    float[] x = new float[n * hidden];
    Platform.copyMemory(null, in[slot], x, Platform.FLOAT_ARRAY_OFFSET, 4L * x.length);
    long t0 = System.nanoTime();
    BatchScorer.Scores s = scorer.score(x, n);
    long dt = System.nanoTime() - t0;
    if (s.rows() != n || s.hidden() != hidden) {
      throw new IllegalStateException("HostStaging: scorer returned [" + s.rows() + ", " + s.hidden() + "], expected ["
          + n + ", " + hidden + "]");
    }
    Platform.copyMemory(s.y(), Platform.FLOAT_ARRAY_OFFSET, null, out[slot], 4L * s.y().length);
    uploaded[slot] = false;
    pending[slot] = true;
    return new PinnedStaging.Result(n, s.topkIds(), s.topkWeights(), 0L, dt, 0L);
  }

  @Override
  public long awaitOutput(int slot) {
    check(slot);
    if (!pending[slot]) {
      throw new IllegalStateException("HostStaging: slot " + slot + " has no output pending");
    }
    pending[slot] = false;
    return 0L;
  }

  @Override
  public long outputAddress(int slot) {
    check(slot);
    return out[slot];
  }

  @Override
  public void reset() {
    uploaded[0] = uploaded[1] = pending[0] = pending[1] = false;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (int s = 0; s < 2; s++) {
      Platform.freeMemory(in[s]);
      Platform.freeMemory(out[s]);
    }
  }

  private void check(int slot) {
    if (closed) {
      throw new IllegalStateException("HostStaging already closed");
    }
    if (slot != 0 && slot != 1) {
      throw new IllegalArgumentException("HostStaging: slot must be 0 or 1, got " + slot);
    }
  }
}
