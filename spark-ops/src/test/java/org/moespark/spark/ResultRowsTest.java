package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.BoundReference;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeArrayData;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link ResultRows} against Spark's own conversion: the bytes of the UnsafeRow that an UnsafeProjection
 * makes from the bulk value must equal those it makes from Spark's generic {@code ColumnarArray} /
 * {@code ColumnarRow} of the same vector, on and off heap, with null rows, skipped rows (a
 * {@link SelectedColumnVector}) and widths that need word padding.
 */
class ResultRowsTest {
  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void scoreArraysMatchSparksConversion(boolean offHeap) {
    for (int width : new int[] {1, 5, 64, 2048}) {
      try (WritableColumnVector v = vector(offHeap, MoeScoreExpr.SCORE_TYPE, 7)) {
        fillArrays(v, 7, width, 11, new int[] {2, 5});
        assertSameRows(v, MoeScoreExpr.SCORE_TYPE, 7, "width " + width + (offHeap ? " off-heap" : " on-heap"));
      }
    }
  }

  @ParameterizedTest
  @ValueSource(booleans = {false, true})
  void routedStructsMatchSparksConversion(boolean offHeap) {
    int rows = 9;
    try (WritableColumnVector v = vector(offHeap, MoeScoreExpr.ROUTED_TYPE, rows)) {
      fillArrays((WritableColumnVector) v.getChild(0), rows, 2048, 1, new int[0]);
      fillInts((WritableColumnVector) v.getChild(1), rows, 3);
      fillArrays((WritableColumnVector) v.getChild(2), rows, 3, 2, new int[0]);
      v.putNull(4); // a bad row with a null result
      assertSameRows(v, MoeScoreExpr.ROUTED_TYPE, rows, offHeap ? "off-heap" : "on-heap");
      ResultRows rr = new ResultRows(MoeScoreExpr.ROUTED_TYPE);
      assertTrue(rr.bind(v));
      assertNull(rr.value(4));
      UnsafeRow s = (UnsafeRow) rr.value(3);
      assertEquals(2048, s.getArray(0).numElements());
      assertArrayEquals(v.getChild(1).getArray(3).toIntArray(), s.getArray(1).toIntArray());
    }
  }

  @Test
  void skippedRowsReadThroughTheSelection() {
    int rows = 8;
    try (WritableColumnVector v = vector(true, MoeScoreExpr.SCORE_TYPE, rows)) {
      fillArrays(v, rows, 6, 5, new int[0]);
      int[] keep = {0, 3, 4, 7};
      SelectedColumnVector sel = new SelectedColumnVector(v, keep, keep.length);
      ResultRows rr = new ResultRows(MoeScoreExpr.SCORE_TYPE);
      assertTrue(rr.bind(sel));
      for (int i = 0; i < keep.length; i++) {
        UnsafeArrayData a = (UnsafeArrayData) rr.value(i);
        assertArrayEquals(v.getArray(keep[i]).toFloatArray(), a.toFloatArray(), "view row " + i);
      }
    }
  }

  @Test
  void otherVectorsAndTypesAreNotBulk() {
    ResultRows rr = new ResultRows(MoeScoreExpr.SCORE_TYPE);
    try (WritableColumnVector v = vector(false, MoeScoreExpr.SCORE_TYPE, 2)) {
      fillArrays(v, 2, 3, 1, new int[0]);
      ColumnVector foreign = new SelectedColumnVector(new SelectedColumnVector(v, new int[] {0, 1}, 2),
          new int[] {0}, 1);
      assertFalse(rr.bind(foreign), "a view of a view is not the operator's own vector");
    }
    DataType doubles = DataTypes.createArrayType(DataTypes.DoubleType, false);
    assertThrows(IllegalArgumentException.class, () -> new ResultRows(doubles));
  }

  /** The row an UnsafeProjection makes of (bulk value) equals the one it makes of Spark's accessor, row by row. */
  private static void assertSameRows(WritableColumnVector v, DataType t, int rows, String what) {
    UnsafeProjection proj = UnsafeProjection.create(Scala.seq(List.<Expression>of(new BoundReference(0, t, true))));
    ResultRows rr = new ResultRows(t);
    assertTrue(rr.bind(v), what + ": the operator's vector is bulk");
    ColumnarBatch batch = new ColumnarBatch(new ColumnVector[] {v}, rows);
    for (int r = 0; r < rows; r++) {
      InternalRow generic = batch.getRow(r);
      byte[] want = proj.apply(generic).getBytes();
      GenericInternalRow fast = new GenericInternalRow(new Object[] {rr.value(r)});
      byte[] got = proj.apply(fast).getBytes();
      assertArrayEquals(want, got, what + ", row " + r);
    }
  }

  private static WritableColumnVector vector(boolean offHeap, DataType t, int rows) {
    return offHeap ? new OffHeapColumnVector(rows, t) : new OnHeapColumnVector(rows, t);
  }

  /** Row r = width gaussian floats at element r * width (the operator's layout); rows in nulls are null. */
  private static void fillArrays(WritableColumnVector v, int rows, int width, long seed, int[] nulls) {
    SplittableRandom rnd = new SplittableRandom(seed);
    v.arrayData().reserve(rows * width);
    for (int i = 0; i < rows * width; i++) {
      v.arrayData().putFloat(i, (float) rnd.nextGaussian());
    }
    for (int r = 0; r < rows; r++) {
      v.putArray(r, r * width, width);
    }
    for (int r : nulls) {
      v.putNull(r);
    }
  }

  private static void fillInts(WritableColumnVector v, int rows, int width) {
    v.arrayData().reserve(rows * width);
    for (int i = 0; i < rows * width; i++) {
      v.arrayData().putInt(i, (i * 7919) % 64);
    }
    for (int r = 0; r < rows; r++) {
      v.putArray(r, r * width, width);
    }
  }
}
