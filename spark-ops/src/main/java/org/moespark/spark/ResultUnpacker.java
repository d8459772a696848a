package org.moespark.spark;

import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.unsafe.Platform;

/**
 * Writes one chunk of layer results (y and routing) into the operator's result vectors in bulk (on the GPU
 * path y comes from the staging's pinned output: {@link #putFloatRowsFrom}): chunk row {@code j} goes to
 * batch row {@code rowsOf[j]} (ascending; bad rows of the batch leave gaps). Rows that are consecutive in
 * the batch are written with one copy per run, so a chunk without bad rows is one copy per column.
 * Vectors are {@code array<float>}/{@code array<int>} vectors whose data children were reserved for the
 * whole batch (row {@code r} at element offset {@code r × width}).
 */
final class ResultUnpacker {
  private ResultUnpacker() {}

  /** Copies {@code src[count, width]} into the {@code array<float>} vector {@code out}. */
  static void putFloatRows(WritableColumnVector out, int[] rowsOf, int count, float[] src, int width) {
    WritableColumnVector data = out.arrayData();
    for (int j = 0; j < count;) {
      int e = runEnd(rowsOf, j, count);
      data.putFloats(rowsOf[j] * width, (e - j) * width, src, j * width);
      j = e;
    }
    putArrays(out, rowsOf, count, width);
  }

  /**
   * Copies fp32 rows {@code [count, width]} at native address {@code src} (the GPU path's pinned output)
   * into the off-heap {@code array<float>} vector {@code out}, one memory copy per run of consecutive batch
   * rows.
   */
  static void putFloatRowsFrom(WritableColumnVector out, int[] rowsOf, int count, long src, int width) {
    long dst = ((OffHeapColumnVector) out.arrayData()).valuesNativeAddress();
    long rowBytes = 4L * width;
    for (int j = 0; j < count;) {
      int e = runEnd(rowsOf, j, count);
      Platform.copyMemory(null, src + rowBytes * j, null, dst + rowBytes * rowsOf[j], rowBytes * (e - j));
      j = e;
    }
    putArrays(out, rowsOf, count, width);
  }

  /** Copies {@code src[count, width]} into the {@code array<int>} vector {@code out}. */
  static void putIntRows(WritableColumnVector out, int[] rowsOf, int count, int[] src, int width) {
    WritableColumnVector data = out.arrayData();
    for (int j = 0; j < count;) {
      int e = runEnd(rowsOf, j, count);
      data.putInts(rowsOf[j] * width, (e - j) * width, src, j * width);
      j = e;
    }
    putArrays(out, rowsOf, count, width);
  }

  /** Sets the array offsets and lengths of the chunk's rows (row {@code r} at element {@code r × width}). */
  static void putArrays(WritableColumnVector out, int[] rowsOf, int count, int width) {
    for (int j = 0; j < count; j++) {
      int r = rowsOf[j];
      out.putArray(r, r * width, width);
    }
  }

  /** End (exclusive) of the run of consecutive batch rows starting at chunk row {@code j}. */
  private static int runEnd(int[] rowsOf, int j, int count) {
    int e = j + 1;
    while (e < count && rowsOf[e] == rowsOf[e - 1] + 1) {
      e++;
    }
    return e;
  }
}
