package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.unsafe.Platform;
import org.junit.jupiter.api.Test;

/**
 * The GPU path's packing (column vectors → native fp32 rows) against {@link EmbeddingReader}, the CPU
 * path's reader: the same values bit for bit and the same verdict and message for every bad row, on
 * on-heap and off-heap vectors, {@code array<float>}, {@code array<double>} and float32 {@code binary}.
 */
class EmbeddingPackerTest {
  static final int H = 37; // odd: exercises the finiteness check's tail

  /** Rows: good ones plus null, short, NaN, +Inf, -Inf (last element), null element. */
  static float[][] rows() {
    SplittableRandom r = new SplittableRandom(3);
    float[][] rows = new float[12][];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = new float[H];
      for (int h = 0; h < H; h++) {
        rows[i][h] = (float) (r.nextGaussian() * 1e3);
      }
    }
    rows[0][5] = Float.MAX_VALUE;
    rows[0][6] = -Float.MIN_VALUE; // subnormal: finite
    rows[2] = null;
    rows[4] = new float[H - 1];
    rows[6][H / 2] = Float.NaN;
    rows[8][H - 1] = Float.POSITIVE_INFINITY; // the odd tail element
    rows[9][0] = Float.NEGATIVE_INFINITY;
    return rows;
  }

  static WritableColumnVector floatArrays(float[][] rows, boolean offHeap, boolean nullElement) {
    DataType t = DataTypes.createArrayType(DataTypes.FloatType, true);
    WritableColumnVector v = offHeap ? new OffHeapColumnVector(rows.length, t) : new OnHeapColumnVector(rows.length, t);
    for (int i = 0; i < rows.length; i++) {
      if (rows[i] == null) {
        v.putNull(i);
        continue;
      }
      int off = v.arrayData().getElementsAppended();
      for (int h = 0; h < rows[i].length; h++) {
        if (nullElement && i == 10 && h == 3) {
          v.arrayData().appendNull();
        } else {
          v.arrayData().appendFloat(rows[i][h]);
        }
      }
      v.putArray(i, off, rows[i].length);
    }
    return v;
  }

  static WritableColumnVector binaries(float[][] rows, boolean offHeap) {
    WritableColumnVector v = offHeap ? new OffHeapColumnVector(rows.length, DataTypes.BinaryType)
        : new OnHeapColumnVector(rows.length, DataTypes.BinaryType);
    for (int i = 0; i < rows.length; i++) {
      if (rows[i] == null) {
        v.putNull(i);
        continue;
      }
      ByteBuffer b = ByteBuffer.allocate(4 * rows[i].length).order(ByteOrder.LITTLE_ENDIAN);
      b.asFloatBuffer().put(rows[i]);
      v.putByteArray(i, b.array());
    }
    return v;
  }

  static WritableColumnVector doubleArrays(float[][] rows) {
    WritableColumnVector v = new OnHeapColumnVector(rows.length, DataTypes.createArrayType(DataTypes.DoubleType, true));
    for (int i = 0; i < rows.length; i++) {
      if (rows[i] == null) {
        v.putNull(i);
        continue;
      }
      int off = v.arrayData().getElementsAppended();
      for (float f : rows[i]) {
        v.arrayData().appendDouble(f);
      }
      v.putArray(i, off, rows[i].length);
    }
    return v;
  }

  /** Packs every row and compares with EmbeddingReader; returns how many rows took the bulk path. */
  static void check(WritableColumnVector v, CallPlan.InputKind kind, boolean expectBulk) {
    EmbeddingPacker p = new EmbeddingPacker(v, kind, H);
    assertEquals(expectBulk, p.bulk(), "bulk path for " + v.getClass().getSimpleName() + " " + kind);
    long dst = Platform.allocateMemory(4L * H);
    try {
      for (int r = 0; r < 12; r++) {
        float[] want = new float[H];
        String wantWhy = EmbeddingReader.read(v, kind, r, H, want, 0);
        String why = p.pack(r, dst);
        assertEquals(wantWhy, why, "row " + r + " verdict");
        if (why == null) {
          float[] got = new float[H];
          Platform.copyMemory(null, dst, got, Platform.FLOAT_ARRAY_OFFSET, 4L * H);
          for (int h = 0; h < H; h++) {
            assertEquals(Float.floatToRawIntBits(want[h]), Float.floatToRawIntBits(got[h]), "row " + r + " element " + h);
          }
        }
      }
    } finally {
      Platform.freeMemory(dst);
    }
  }

  @Test
  void floatArraysOnAndOffHeapMatchTheReaderBitForBit() {
    for (boolean off : new boolean[] {false, true}) {
      try (WritableColumnVector v = floatArrays(rows(), off, false)) {
        check(v, CallPlan.InputKind.FLOAT_ARRAY, true);
      }
    }
  }

  @Test
  void binaryFloat32OnAndOffHeapMatchesTheReader() {
    for (boolean off : new boolean[] {false, true}) {
      try (WritableColumnVector v = binaries(rows(), off)) {
        check(v, CallPlan.InputKind.BINARY_LE_FLOAT32, true);
      }
    }
  }

  @Test
  void nullElementsAndDoublesTakeTheReaderPath() {
    try (WritableColumnVector v = floatArrays(rows(), true, true)) {
      check(v, CallPlan.InputKind.FLOAT_ARRAY, false); // a null element in the child: no bulk path
    }
    try (WritableColumnVector v = doubleArrays(rows())) {
      check(v, CallPlan.InputKind.DOUBLE_ARRAY, false);
    }
  }

  @Test
  void badRowsAreNamedLikeTheCpuPath() {
    try (WritableColumnVector v = floatArrays(rows(), false, false)) {
      EmbeddingPacker p = new EmbeddingPacker(v, CallPlan.InputKind.FLOAT_ARRAY, H);
      long dst = Platform.allocateMemory(4L * H);
      try {
        assertEquals("the embedding is null", p.pack(2, dst));
        assertTrue(p.pack(4, dst).startsWith("array<float> of length " + (H - 1)), p.pack(4, dst));
        assertTrue(p.pack(6, dst).startsWith("element " + H / 2 + " is NaN"), p.pack(6, dst));
        assertTrue(p.pack(8, dst).startsWith("element " + (H - 1) + " is Infinity"), p.pack(8, dst));
        assertTrue(p.pack(9, dst).startsWith("element 0 is -Infinity"), p.pack(9, dst));
        assertNull(p.pack(0, dst));
      } finally {
        Platform.freeMemory(dst);
      }
    }
  }

  @Test
  void allFiniteFindsEveryNonFiniteBitPattern() {
    int[] specials = {0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff, 0x7fffffff};
    int[] finite = {0, 0x80000000, 1, 0x007fffff, 0x7f7fffff, 0xff7fffff, 0x3f800000};
    for (int n : new int[] {1, 2, 3, 4, 5, 7, 8, 9, 12}) { // the 4-value unrolled loop, its tails
      long a = Platform.allocateMemory(4L * n);
      try {
        for (int pos = 0; pos < n; pos++) {
          for (int f : finite) {
            for (int i = 0; i < n; i++) {
              Platform.putInt(null, a + 4L * i, 0x3f800000);
            }
            Platform.putInt(null, a + 4L * pos, f);
            assertTrue(EmbeddingPacker.allFinite(a, n), Integer.toHexString(f) + " at " + pos + " of " + n);
            assertTrue(EmbeddingPacker.allFinite(onHeap(a, n), 3, n), Integer.toHexString(f) + " at " + pos + " (array)");
          }
          for (int s : specials) {
            Platform.putInt(null, a + 4L * pos, s);
            assertFalse(EmbeddingPacker.allFinite(a, n), Integer.toHexString(s) + " at " + pos + " of " + n);
            assertFalse(EmbeddingPacker.allFinite(onHeap(a, n), 3, n), Integer.toHexString(s) + " at " + pos + " (array)");
            Platform.putInt(null, a + 4L * pos, 0x3f800000);
          }
        }
      } finally {
        Platform.freeMemory(a);
      }
    }
  }

  @Test
  void unpackWritesRowsWithGapsBitForBit() {
    int w = 5;
    int n = 9;
    int[] rowsOf = {0, 1, 2, 4, 5, 8}; // gaps at 3, 6, 7 (bad rows)
    int count = rowsOf.length;
    float[] y = new float[count * w];
    int[] ids = new int[count * 2];
    for (int i = 0; i < y.length; i++) {
      y[i] = i * 0.5f - 3;
    }
    for (int i = 0; i < ids.length; i++) {
      ids[i] = i * 7;
    }
    DataType fa = DataTypes.createArrayType(DataTypes.FloatType, false);
    try (OffHeapColumnVector out = new OffHeapColumnVector(n, fa);
        OnHeapColumnVector ref = new OnHeapColumnVector(n, fa);
        OnHeapColumnVector outIds = new OnHeapColumnVector(n, DataTypes.createArrayType(DataTypes.IntegerType, false))) {
      out.arrayData().reserve(n * w);
      ref.arrayData().reserve(n * w);
      outIds.arrayData().reserve(n * 2);
      // the GPU path: y rows land by DMA at element r * w of the off-heap data, then only the arrays are set
      long dst = ((OffHeapColumnVector) out.arrayData()).valuesNativeAddress();
      for (int j = 0; j < count; j++) {
        Platform.copyMemory(y, Platform.FLOAT_ARRAY_OFFSET + 4L * j * w, null, dst + 4L * rowsOf[j] * w, 4L * w);
      }
      ResultUnpacker.putArrays(out, rowsOf, count, w);
      ResultUnpacker.putFloatRows(ref, rowsOf, count, y, w);
      ResultUnpacker.putIntRows(outIds, rowsOf, count, ids, 2);
      for (int j = 0; j < count; j++) {
        int r = rowsOf[j];
        float[] want = java.util.Arrays.copyOfRange(y, j * w, (j + 1) * w);
        assertArrayEquals(want, out.getArray(r).toFloatArray(), "off-heap row " + r);
        assertArrayEquals(want, ref.getArray(r).toFloatArray(), "on-heap row " + r);
        assertArrayEquals(new int[] {ids[2 * j], ids[2 * j + 1]}, outIds.getArray(r).toIntArray(), "ids row " + r);
      }
      assertNotNull(out.getArray(0));
    }
  }

  /** The n floats at native {@code a}, at index 3 of an array whose other slots hold NaN (outside the range checked). */
  private static float[] onHeap(long a, int n) {
    float[] f = new float[n + 6];
    java.util.Arrays.fill(f, Float.NaN);
    Platform.copyMemory(null, a, f, Platform.FLOAT_ARRAY_OFFSET + 12, 4L * n);
    return f;
  }
}
