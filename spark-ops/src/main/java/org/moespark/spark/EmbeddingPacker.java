package org.moespark.spark;

import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.unsafe.Platform;

/**
 * Packs embedding rows of one column vector into native memory as fp32 {@code [rows, hidden]} (the GPU
 * path's pinned staging), one memory copy per row and no per-element JVM work on the fast path.
 *
 * <p>Fast path: a {@link WritableColumnVector} (the vectorized Parquet reader's, {@code RowToColumnar}'s)
 * whose child data vector has no dictionary and no null elements, holding {@code array<float>} (float
 * child) or little-endian float32 {@code binary} (byte child): the row's bytes are copied straight from
 * the child's off-heap address or on-heap array into the destination, after one integer pass over the
 * source's exponent fields (8 bytes at a time) found every value finite. The destination is only written,
 * never read (pinned memory: CPU reads of it were slow on the GPU machine's VM). Every other encoding
 * ({@code array<double>}, dictionary-encoded children, other {@link ColumnVector}s) and every bad row go
 * through {@link EmbeddingReader}, so values and error messages are exactly the CPU path's.
 */
final class EmbeddingPacker {
  private final ColumnVector col;
  private final CallPlan.InputKind kind;
  private final int hidden;
  private final WritableColumnVector w; // non-null on the fast path
  private final Object base; // on-heap array of the child data, or null for off-heap
  private final long baseOffset; // Platform offset of element 0 (array offset or native address)
  private final int elemBytes; // 4 for float children, 1 for byte children
  private float[] tmp;

  EmbeddingPacker(ColumnVector col, CallPlan.InputKind kind, int hidden) {
    this.col = col;
    this.kind = kind;
    this.hidden = hidden;
    WritableColumnVector fast = null;
    Object b = null;
    long off = 0;
    int eb = 0;
    if (col instanceof WritableColumnVector wc && kind != CallPlan.InputKind.DOUBLE_ARRAY) {
      WritableColumnVector data = wc.arrayData();
      if (data != null && !data.hasDictionary() && !data.hasNull()) {
        eb = kind == CallPlan.InputKind.FLOAT_ARRAY ? 4 : 1;
        if (data instanceof OffHeapColumnVector oh) {
          fast = wc;
          off = oh.valuesNativeAddress();
        } else if (data instanceof OnHeapColumnVector oh) {
          b = eb == 4 ? OnHeapData.floats(oh) : OnHeapData.bytes(oh);
          if (b != null) {
            fast = wc;
            off = eb == 4 ? Platform.FLOAT_ARRAY_OFFSET : Platform.BYTE_ARRAY_OFFSET;
          }
        }
      }
    }
    this.w = fast;
    this.base = b;
    this.baseOffset = off;
    this.elemBytes = eb;
  }

  /** Whether rows are copied from the child vector's memory (else through {@link EmbeddingReader}). */
  boolean bulk() {
    return w != null;
  }

  /**
   * Writes row {@code r} to {@code dst} as {@code hidden} native-order fp32 values; returns null for a good
   * row, else what is wrong with it (the destination then holds garbage and must not be used).
   */
  String pack(int r, long dst) {
    if (w != null) {
      if (w.isNullAt(r)) {
        return "the embedding is null";
      }
      int len = w.getArrayLength(r);
      if (len * (long) elemBytes == 4L * hidden) {
        int first = w.getArrayOffset(r);
        long src = baseOffset + (long) elemBytes * first;
        // checked on the source, not on dst: dst is pinned memory, which the CPU should only write;
        // on-heap floats with a plain array loop, which the JIT vectorizes (Unsafe reads it does not)
        if (base instanceof float[] fa ? allFinite(fa, first, hidden) : allFinite(base, src, hidden)) {
          Platform.copyMemory(base, src, null, dst, 4L * hidden);
          return null;
        }
      }
    }
    if (tmp == null) {
      tmp = new float[hidden];
    }
    String why = EmbeddingReader.read(col, kind, r, hidden, tmp, 0);
    if (why == null) {
      Platform.copyMemory(tmp, Platform.FLOAT_ARRAY_OFFSET, null, dst, 4L * hidden);
    }
    return why;
  }

  /**
   * Whether none of the {@code n} fp32 values at {@code addr} is NaN or ±Inf: a value is non-finite iff its
   * exponent field is all ones, i.e. {@code ~bits & 0x7f800000} is 0; {@code t - 1} is then negative, and
   * one OR over all values keeps the sign bit.
   */
  static boolean allFinite(long addr, int n) {
    return allFinite(null, addr, n);
  }

  /**
   * {@link #allFinite(long, int)} on {@code a[from, from + n)}, as a max-of-|x| reduction ({@code Math.max}
   * propagates NaN, |±Inf| exceeds the largest float), which C2 vectorizes; the bit test above it does not
   * vectorize on floats (11.3 vs 7.4 GB/s on the build machine, L1-resident rows of 2048).
   */
  static boolean allFinite(float[] a, int from, int n) {
    float m = 0f;
    for (int i = from; i < from + n; i++) {
      m = Math.max(m, Math.abs(a[i]));
    }
    return m <= Float.MAX_VALUE;
  }

  /**
   * {@link #allFinite(long, int)} on {@code n} fp32 values at ({@code base}, {@code offset}) (Platform addressing),
   * two values per 64-bit read: {@code (bits & 0x7f800000) + 0x00800000} carries into a lane's bit 31 exactly when
   * its exponent is all ones, and never into the next lane; two independent accumulators. With the copy after it
   * 7.8-8.3 GB/s a core on the build machine, against 5.0-5.4 for the previous subtract-and-OR form.
   */
  static boolean allFinite(Object base, long offset, int n) {
    long a0 = 0;
    long a1 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      a0 |= (Platform.getLong(base, offset + 4L * i) & 0x7f8000007f800000L) + 0x0080000000800000L;
      a1 |= (Platform.getLong(base, offset + 4L * i + 8) & 0x7f8000007f800000L) + 0x0080000000800000L;
    }
    for (; i < n; i++) {
      a0 |= (Platform.getInt(base, offset + 4L * i) & 0x7f800000L) + 0x00800000L;
    }
    return ((a0 | a1) & 0x8000000080000000L) == 0;
  }
}
