package org.moespark.spark;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.apache.spark.unsafe.Platform;

/**
 * Reads one embedding row out of a column vector into a float buffer, and says what is wrong with a bad
 * row. Writable vectors (the vectorized Parquet reader's, {@code RowToColumnar}'s) are read through their
 * child data vector: an off-heap float vector without a dictionary with one memory copy per row, others
 * element by element without boxing; any other {@link ColumnVector} through {@link ColumnarArray}.
 */
final class EmbeddingReader {
  private EmbeddingReader() {}

  /**
   * Copies row {@code r} of {@code col} into {@code x[at, at+hidden)}; returns null when it is a good
   * row, else what is wrong with it.
   */
  static String read(ColumnVector col, CallPlan.InputKind kind, int r, int hidden, float[] x, int at) {
    if (col.isNullAt(r)) {
      return "the embedding is null";
    }
    switch (kind) {
      case BINARY_LE_FLOAT32 -> {
        byte[] b = col.getBinary(r);
        if (b.length != 4L * hidden) {
          return "binary of " + b.length + " bytes, expected 4 * hidden_size = " + 4L * hidden + " (little-endian float32)";
        }
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(x, at, hidden);
      }
      case FLOAT_ARRAY, DOUBLE_ARRAY -> {
        ColumnVector data;
        int off;
        int len;
        if (col instanceof WritableColumnVector w) {
          data = w.arrayData();
          off = w.getArrayOffset(r);
          len = w.getArrayLength(r);
        } else {
          ColumnarArray a = col.getArray(r);
          len = a.numElements();
          if (len != hidden) {
            boolean f = kind == CallPlan.InputKind.FLOAT_ARRAY;
            return describeLength(len, hidden, kind,
                i -> a.isNullAt(i) ? "null" : f ? String.valueOf(a.getFloat(i)) : String.valueOf(a.getDouble(i)));
          }
          for (int i = 0; i < len; i++) {
            if (a.isNullAt(i)) {
              return "element " + i + " is null";
            }
            x[at + i] = kind == CallPlan.InputKind.FLOAT_ARRAY ? a.getFloat(i) : (float) a.getDouble(i);
          }
          return checkFinite(x, at, hidden, null);
        }
        if (len != hidden) {
          boolean f = kind == CallPlan.InputKind.FLOAT_ARRAY;
          ColumnVector d = data;
          int o = off;
          return describeLength(len, hidden, kind, i -> d.isNullAt(o + i) ? "null"
              : f ? String.valueOf(d.getFloat(o + i)) : String.valueOf(d.getDouble(o + i)));
        }
        if (data.hasNull()) {
          for (int i = 0; i < len; i++) {
            if (data.isNullAt(off + i)) {
              return "element " + i + " is null";
            }
          }
        }
        if (kind == CallPlan.InputKind.FLOAT_ARRAY) {
          if (data instanceof OffHeapColumnVector oh && !oh.hasDictionary()) {
            Platform.copyMemory(null, oh.valuesNativeAddress() + 4L * off, x,
                Platform.FLOAT_ARRAY_OFFSET + 4L * at, 4L * len);
          } else {
            for (int i = 0; i < len; i++) {
              x[at + i] = data.getFloat(off + i);
            }
          }
          return checkFinite(x, at, hidden, null);
        }
        for (int i = 0; i < len; i++) {
          double d = data.getDouble(off + i);
          if (!Double.isFinite(d)) {
            return "element " + i + " is " + d;
          }
          x[at + i] = (float) d;
        }
        return checkFinite(x, at, hidden, "overflows float32");
      }
      default -> throw new IllegalStateException("unknown input kind " + kind);
    }
    return checkFinite(x, at, hidden, null);
  }

  private static String describeLength(int len, int hidden, CallPlan.InputKind kind,
      java.util.function.IntFunction<String> element) {
    StringBuilder sb = new StringBuilder(kind == CallPlan.InputKind.FLOAT_ARRAY ? "array<float>" : "array<double>")
        .append(" of length ").append(len).append(", expected hidden_size ").append(hidden);
    if (len > 0) {
      sb.append("; first values [");
      int k = Math.min(len, 4);
      for (int i = 0; i < k; i++) {
        sb.append(i == 0 ? "" : ", ").append(element.apply(i));
      }
      sb.append(len > k ? ", ...]" : "]");
    }
    return sb.toString();
  }

  private static String checkFinite(float[] x, int at, int hidden, String note) {
    if (EmbeddingPacker.allFinite(x, at, hidden)) {
      return null; // the common case, one vectorized pass; else find the element for the message
    }
    for (int i = 0; i < hidden; i++) {
      float v = x[at + i];
      if (!Float.isFinite(v)) {
        return "element " + i + " is " + v + (note == null ? "" : " (" + note + ")") + "; first values "
            + preview(x, at, hidden);
      }
    }
    return null;
  }

  private static String preview(float[] x, int at, int hidden) {
    StringBuilder sb = new StringBuilder("[");
    int k = Math.min(hidden, 4);
    for (int i = 0; i < k; i++) {
      sb.append(i == 0 ? "" : ", ").append(x[at + i]);
    }
    return sb.append(hidden > k ? ", ...]" : "]").toString();
  }
}
