package org.moespark.spark;

import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.catalyst.expressions.codegen.UnsafeRowWriter;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.unsafe.Platform;
import org.apache.spark.unsafe.array.ByteArrayMethods;

/**
 * One result column of {@link MoeScoreExec} turned into Spark's row format a row at a time, with one bulk
 * memory copy per array: {@code moe_score}'s {@code array<float>} becomes an {@link UnsafeArrayData},
 * {@code moe_score_routed}'s {@code struct<output, topk_ids, topk_weights>} an {@link UnsafeRow}. Spark's
 * generic columnar-to-row conversion reads a {@code ColumnarArray} and writes it element by element (two
 * virtual calls and a null check per float: about 30 µs per 2048-float row on the H100 host, a third of a
 * GPU scoring job's CPU time); an {@code UnsafeProjection} copies an {@code UnsafeArrayData} or a struct
 * {@code UnsafeRow} it is given with one copy.
 *
 * <p>Fast path: the column is the operator's own {@link WritableColumnVector} (off-heap on the GPU path,
 * on-heap on the CPU path), possibly behind a {@link SelectedColumnVector} when bad rows were skipped.
 * Anything else returns {@code null} from {@link #value} and the caller falls back to Spark's generic
 * accessors. The returned value is reused by the next call: copy it (an {@code UnsafeProjection} does)
 * before asking for the next row.
 */
final class ResultRows {
  private final boolean routed;
  private final UnsafeRowWriter struct = new UnsafeRowWriter(3, 8192 + 512);
  private final UnsafeArrayData array = new UnsafeArrayData();
  private byte[] arrayBuf = new byte[0];
  // the bound column: the vector, and per array (y; topk ids and weights when routed) its vector and data
  private WritableColumnVector bound;
  private int[] selection; // non-null when the bound column is a SelectedColumnVector's base
  private final WritableColumnVector[] arrays = new WritableColumnVector[3];
  private final Object[] bases = new Object[3];
  private final long[] offsets = new long[3];

  /** For a result column of type {@code t}: {@link MoeScoreExpr#SCORE_TYPE} or {@link MoeScoreExpr#ROUTED_TYPE}. */
  ResultRows(DataType t) {
    if (t.sameType(MoeScoreExpr.ROUTED_TYPE)) {
      routed = true;
    } else if (t.sameType(MoeScoreExpr.SCORE_TYPE)) {
      routed = false;
    } else {
      throw new IllegalArgumentException("not a moe_score result type: " + t.simpleString());
    }
  }

  /**
   * Binds the column of the next batch; returns whether {@link #value} can read it (else the caller uses
   * Spark's generic row accessors for this batch).
   */
  boolean bind(ColumnVector v) {
    bound = null;
    selection = null;
    ColumnVector b = v instanceof SelectedColumnVector s ? s.base() : v;
    if (!(b instanceof WritableColumnVector w)) {
      return false;
    }
    int n = routed ? 3 : 1;
    for (int f = 0; f < n; f++) {
      ColumnVector a = routed ? w.getChild(f) : w;
      if (!(a instanceof WritableColumnVector aw) || !bulk(aw, f)) {
        return false;
      }
    }
    bound = w;
    selection = v instanceof SelectedColumnVector s ? s.selection() : null;
    return true;
  }

  /**
   * Row {@code r} of the bound column as an {@link UnsafeArrayData} ({@code moe_score}) or a struct
   * {@link UnsafeRow} ({@code moe_score_routed}), or {@code null} where the result is null. Valid until the
   * next call.
   */
  Object value(int r) {
    int row = selection == null ? r : selection[r];
    if (bound.isNullAt(row)) {
      return null;
    }
    if (!routed) {
      int size = arrayBytes(bound.getArrayLength(row), 4);
      if (arrayBuf.length < size) {
        arrayBuf = new byte[size];
      }
      writeArray(0, row, arrayBuf, Platform.BYTE_ARRAY_OFFSET);
      array.pointTo(arrayBuf, Platform.BYTE_ARRAY_OFFSET, size);
      return array;
    }
    struct.reset();
    struct.zeroOutNullBytes();
    for (int f = 0; f < 3; f++) {
      int size = arrayBytes(arrays[f].getArrayLength(row), 4);
      int prev = struct.cursor();
      struct.grow(size);
      writeArray(f, row, struct.getBuffer(), struct.cursor());
      struct.increaseCursor(size);
      struct.setOffsetAndSizeFromPreviousCursor(f, prev);
    }
    return struct.getRow();
  }

  /** Bytes of an {@link UnsafeArrayData} of {@code n} non-null elements of {@code elemBytes} each. */
  static int arrayBytes(int n, int elemBytes) {
    return Math.toIntExact(UnsafeArrayData.calculateHeaderPortionInBytes(n)
        + ByteArrayMethods.roundNumberOfBytesToNearestWord((long) n * elemBytes));
  }

  /** Writes row {@code row} of bound array {@code f} (4-byte elements) as an UnsafeArrayData at (dst, at). */
  private void writeArray(int f, int row, Object dst, long at) {
    WritableColumnVector w = arrays[f];
    int n = w.getArrayLength(row);
    int header = UnsafeArrayData.calculateHeaderPortionInBytes(n);
    long values = 4L * n;
    int size = arrayBytes(n, 4);
    Platform.putLong(dst, at, n);
    Platform.setMemory(dst, at + 8, header - 8, (byte) 0); // no null elements
    Platform.copyMemory(bases[f], offsets[f] + 4L * w.getArrayOffset(row), dst, at + header, values);
    if (size > header + values) {
      Platform.setMemory(dst, at + header + values, size - header - values, (byte) 0); // word padding
    }
  }

  /**
   * Records where array {@code f}'s float or int data lives (an on-heap array or native memory); false when
   * it cannot be copied in bulk (dictionary, another element type, a Spark without the field).
   */
  private boolean bulk(WritableColumnVector v, int f) {
    WritableColumnVector data = v.arrayData();
    if (data == null || data.hasDictionary() || !(v.dataType() instanceof ArrayType at)) {
      return false;
    }
    DataType t = at.elementType();
    if (!(t instanceof FloatType) && !(t instanceof IntegerType)) {
      return false;
    }
    arrays[f] = v;
    if (data instanceof OffHeapColumnVector oh) {
      bases[f] = null;
      offsets[f] = oh.valuesNativeAddress();
      return true;
    }
    if (data instanceof OnHeapColumnVector oh) {
      bases[f] = t instanceof FloatType ? OnHeapData.floats(oh) : OnHeapData.ints(oh);
      offsets[f] = t instanceof FloatType ? Platform.FLOAT_ARRAY_OFFSET : Platform.INT_ARRAY_OFFSET;
      return bases[f] != null;
    }
    return false;
  }
}
