package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.apache.spark.sql.execution.vectorized.OffHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.unsafe.Platform;
import org.junit.jupiter.api.Test;

/** The GPU path's y unpacking (from native memory, per run of consecutive rows) against the on-heap one. */
class ResultUnpackerTest {
  private static final DataType FLOATS = DataTypes.createArrayType(DataTypes.FloatType, false);

  @Test
  void rowsFromNativeMemoryLandWhereTheArrayCopyPutsThem() {
    int width = 5;
    int batch = 12;
    // chunk rows → batch rows: runs [0,1,2], [4], [7,8], [11]; rows 3, 5, 6, 9, 10 are bad (gaps)
    int[] rowsOf = {0, 1, 2, 4, 7, 8, 11};
    int count = rowsOf.length;
    float[] y = new float[count * width];
    SplittableRandom rnd = new SplittableRandom(3);
    for (int i = 0; i < y.length; i++) {
      y[i] = (float) rnd.nextGaussian();
    }
    long src = Platform.allocateMemory(4L * y.length);
    try (WritableColumnVector off = new OffHeapColumnVector(batch, FLOATS);
        WritableColumnVector on = new OnHeapColumnVector(batch, FLOATS)) {
      Platform.copyMemory(y, Platform.FLOAT_ARRAY_OFFSET, null, src, 4L * y.length);
      off.arrayData().reserve(batch * width);
      on.arrayData().reserve(batch * width);
      for (int i = 0; i < batch * width; i++) {
        off.arrayData().putFloat(i, Float.NaN); // gaps must stay as they were
      }
      ResultUnpacker.putFloatRowsFrom(off, rowsOf, count, src, width);
      ResultUnpacker.putFloatRows(on, rowsOf, count, y, width);
      for (int j = 0; j < count; j++) {
        int r = rowsOf[j];
        assertArrayEquals(on.getArray(r).toFloatArray(), off.getArray(r).toFloatArray(), "batch row " + r);
        float[] want = new float[width];
        System.arraycopy(y, j * width, want, 0, width);
        assertArrayEquals(want, off.getArray(r).toFloatArray(), "chunk row " + j + " at batch row " + r);
        assertEquals(width, off.getArrayLength(r));
      }
      for (int r : new int[] {3, 5, 6, 9, 10}) {
        for (int k = 0; k < width; k++) {
          assertTrue(Float.isNaN(off.arrayData().getFloat(r * width + k)), "gap row " + r + " untouched");
        }
      }
    } finally {
      Platform.freeMemory(src);
    }
  }
}
