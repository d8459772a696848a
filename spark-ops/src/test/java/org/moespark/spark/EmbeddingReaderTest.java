package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.apache.spark.sql.execution.vectorized.Dictionary;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

/**
 * Reading embeddings out of hand-built column vectors: on-heap, off-heap (the one-copy path),
 * dictionary-encoded, wrapped (not writable), double and binary encodings, and every kind of bad row.
 * Values include -0.0, a subnormal and the float extremes, compared bit for bit.
 */
class EmbeddingReaderTest {
  static final int H = 4;
  static final float[] ROW0 = {1.5f, -0.0f, Float.MIN_VALUE, Float.MAX_VALUE};
  static final float[] ROW2 = {-3.25f, 7f, -Float.MAX_VALUE, 0.1f};

  /** Rows: 0 = ROW0, 1 = null, 2 = ROW2, 3 = length 3, 4 = NaN at 1, 5 = -Inf at 3, 6 = null element at 2. */
  static WritableColumnVector floats(boolean offHeap) {
    WritableColumnVector v = offHeap
        ? new OffHeapColumnVector(7, DataTypes.createArrayType(DataTypes.FloatType))
        : new OnHeapColumnVector(7, DataTypes.createArrayType(DataTypes.FloatType));
    WritableColumnVector d = v.arrayData();
    d.reserve(64);
    int at = 0;
    float[][] rows = {ROW0, null, ROW2, {1f, 2f, 3f}, {0f, Float.NaN, 0f, 0f}, {0f, 0f, 0f, Float.NEGATIVE_INFINITY},
        {1f, 1f, 0f, 1f}};
    for (int r = 0; r < rows.length; r++) {
      if (rows[r] == null) {
        v.putNull(r);
        continue;
      }
      for (int i = 0; i < rows[r].length; i++) {
        if (r == 6 && i == 2) {
          d.putNull(at + i);
        } else {
          d.putFloat(at + i, rows[r][i]);
        }
      }
      v.putArray(r, at, rows[r].length);
      at += rows[r].length;
    }
    return v;
  }

  static String read(ColumnVector v, CallPlan.InputKind kind, int r, float[] x) {
    return EmbeddingReader.read(v, kind, r, H, x, H); // written at offset H: the buffer's first row untouched
  }

  static void checkFloatRows(ColumnVector v, CallPlan.InputKind kind, String label) {
    float[] x = new float[2 * H];
    assertNull(read(v, kind, 0, x), label);
    Tolerance.assertBitEqual(java.util.Arrays.copyOfRange(x, H, 2 * H), ROW0, label + " row 0");
    assertEquals(0, Float.floatToRawIntBits(x[0]), label + ": nothing written before the offset");
    assertNull(read(v, kind, 2, x), label);
    Tolerance.assertBitEqual(java.util.Arrays.copyOfRange(x, H, 2 * H), ROW2, label + " row 2");
    assertEquals("the embedding is null", read(v, kind, 1, x), label);
    assertEquals("array<float> of length 3, expected hidden_size 4; first values [1.0, 2.0, 3.0]",
        read(v, kind, 3, x), label);
    String nan = read(v, kind, 4, x);
    assertTrue(nan.startsWith("element 1 is NaN; first values [0.0, NaN, 0.0, 0.0]"), label + ": " + nan);
    String inf = read(v, kind, 5, x);
    assertTrue(inf.startsWith("element 3 is -Infinity"), label + ": " + inf);
    assertEquals("element 2 is null", read(v, kind, 6, x), label);
  }

  @Test
  void onHeapOffHeapAndWrappedFloatVectors() {
    try (WritableColumnVector on = floats(false); WritableColumnVector off = floats(true)) {
      checkFloatRows(on, CallPlan.InputKind.FLOAT_ARRAY, "on-heap");
      checkFloatRows(off, CallPlan.InputKind.FLOAT_ARRAY, "off-heap");
      int[] identity = {0, 1, 2, 3, 4, 5, 6};
      checkFloatRows(new SelectedColumnVector(off, identity, 7), CallPlan.InputKind.FLOAT_ARRAY, "wrapped");
    }
  }

  @Test
  void dictionaryEncodedOffHeapFloats() {
    float[] dict = {ROW0[0], ROW0[1], ROW0[2], ROW0[3], 9f};
    try (OffHeapColumnVector v = new OffHeapColumnVector(1, DataTypes.createArrayType(DataTypes.FloatType))) {
      WritableColumnVector d = v.arrayData();
      d.reserve(H);
      d.setDictionary(new Dictionary() {
        @Override
        public int decodeToInt(int id) {
          throw new UnsupportedOperationException();
        }

        @Override
        public long decodeToLong(int id) {
          throw new UnsupportedOperationException();
        }

        @Override
        public float decodeToFloat(int id) {
          return dict[id];
        }

        @Override
        public double decodeToDouble(int id) {
          throw new UnsupportedOperationException();
        }

        @Override
        public byte[] decodeToBinary(int id) {
          throw new UnsupportedOperationException();
        }
      });
      WritableColumnVector ids = d.reserveDictionaryIds(H);
      for (int i = 0; i < H; i++) {
        ids.putInt(i, i);
      }
      v.putArray(0, 0, H);
      float[] x = new float[2 * H];
      assertNull(read(v, CallPlan.InputKind.FLOAT_ARRAY, 0, x));
      Tolerance.assertBitEqual(java.util.Arrays.copyOfRange(x, H, 2 * H), ROW0, "dictionary row");
    }
  }

  @Test
  void doubleArrays() {
    try (OnHeapColumnVector v = new OnHeapColumnVector(3, DataTypes.createArrayType(DataTypes.DoubleType))) {
      WritableColumnVector d = v.arrayData();
      d.reserve(12);
      double[][] rows = {{1.5, -0.0, 0.1, -1e-50}, {1e39, 0, 0, 0}, {0, 0, Double.POSITIVE_INFINITY, 0}};
      for (int r = 0; r < 3; r++) {
        for (int i = 0; i < H; i++) {
          d.putDouble(r * H + i, rows[r][i]);
        }
        v.putArray(r, r * H, H);
      }
      float[] x = new float[2 * H];
      assertNull(read(v, CallPlan.InputKind.DOUBLE_ARRAY, 0, x));
      // hand-rounded: 0.1 → 0x3dcccccd, -1e-50 → -0.0f
      Tolerance.assertBitEqual(java.util.Arrays.copyOfRange(x, H, 2 * H),
          new float[] {1.5f, -0.0f, Float.intBitsToFloat(0x3dcccccd), -0.0f}, "double row");
      String over = read(v, CallPlan.InputKind.DOUBLE_ARRAY, 1, x);
      assertTrue(over.startsWith("element 0 is Infinity (overflows float32)"), over);
      assertEquals("element 2 is Infinity", read(v, CallPlan.InputKind.DOUBLE_ARRAY, 2, x));
    }
  }

  @Test
  void littleEndianBinary() {
    try (OnHeapColumnVector v = new OnHeapColumnVector(2, DataTypes.BinaryType)) {
      ByteBuffer b = ByteBuffer.allocate(4 * H).order(ByteOrder.LITTLE_ENDIAN);
      for (float f : ROW2) {
        b.putFloat(f);
      }
      byte[] bytes = b.array();
      // 7.0f little-endian is 00 00 e0 40 (hand check of the byte order)
      assertEquals(0x40, bytes[7] & 0xff);
      assertEquals(0xe0, bytes[6] & 0xff);
      v.putByteArray(0, bytes);
      v.putByteArray(1, new byte[] {1, 2, 3, 4, 5});
      float[] x = new float[2 * H];
      assertNull(read(v, CallPlan.InputKind.BINARY_LE_FLOAT32, 0, x));
      Tolerance.assertBitEqual(java.util.Arrays.copyOfRange(x, H, 2 * H), ROW2, "binary row");
      assertEquals("binary of 5 bytes, expected 4 * hidden_size = 16 (little-endian float32)",
          read(v, CallPlan.InputKind.BINARY_LE_FLOAT32, 1, x));
    }
  }
}
