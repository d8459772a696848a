package org.moespark.spark;

import org.moespark.layer.PinnedStaging;

/**
 * Two slots of row-major fp32 rows that the operator's staged path fills, runs and drains (see
 * {@link MoeScoreEvaluatorFactory}): pack rows at {@link #inputAddress}, {@link #upload}, {@link #compute}
 * (returns the routing), {@link #awaitOutput}, read y at {@link #outputAddress}. On a GPU it is
 * {@link PinnedStaging} (pinned host memory, a copy stream, the device layer); {@link HostStaging} runs a
 * CPU {@link BatchScorer} behind the same calls, so the staged path's packing, chunking, bad-row handling
 * and unpacking run, and are tested, without a GPU.
 */
public interface Staging extends AutoCloseable {
  /** Rows per slot. */
  int capacity();

  int hiddenSize();

  /** Native address of the slot's input, fp32 {@code [capacity, H]}, native byte order. */
  long inputAddress(int slot);

  /** Starts moving the slot's first {@code rows} rows to where {@link #compute} reads them. */
  void upload(int slot, int rows);

  /** Runs the layer on the slot's uploaded rows; y becomes readable at {@link #outputAddress} after {@link #awaitOutput}. */
  PinnedStaging.Result compute(int slot);

  /** Waits for the slot's y; returns the copy's time in nanoseconds (0 where nothing is copied). */
  long awaitOutput(int slot);

  /** Native address of the slot's y, fp32 {@code [rows, H]}. */
  long outputAddress(int slot);

  /** Waits for anything in flight and frees both slots (before going back to a pool). */
  void reset();

  @Override
  void close();

  /** {@link PinnedStaging} as a {@link Staging}. */
  static Staging of(PinnedStaging p) {
    return new Staging() {
      @Override
      public int capacity() {
        return p.capacity();
      }

      @Override
      public int hiddenSize() {
        return p.hiddenSize();
      }

      @Override
      public long inputAddress(int slot) {
        return p.inputAddress(slot);
      }

      @Override
      public void upload(int slot, int rows) {
        p.upload(slot, rows);
      }

      @Override
      public PinnedStaging.Result compute(int slot) {
        return p.compute(slot);
      }

      @Override
      public long awaitOutput(int slot) {
        return p.awaitOutput(slot);
      }

      @Override
      public long outputAddress(int slot) {
        return p.outputAddress(slot);
      }

      @Override
      public void reset() {
        p.reset();
      }

      @Override
      public void close() {
        p.close();
      }
    };
  }
}
