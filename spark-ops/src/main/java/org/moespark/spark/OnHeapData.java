package org.moespark.spark;

import java.lang.reflect.Field;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;

/**
 * The Java array behind an {@link OnHeapColumnVector}'s values ({@code floatData}, {@code intData},
 * {@code byteData}), for copies of many values at once with {@code Platform.copyMemory}. Spark keeps these
 * fields private; a Spark without them (or a JVM that refuses the access) makes every accessor return null,
 * and callers then take Spark's public per-value accessors.
 */
final class OnHeapData {
  private static final Field FLOAT_DATA = field("floatData");
  private static final Field INT_DATA = field("intData");
  private static final Field BYTE_DATA = field("byteData");

  private OnHeapData() {}

  /** The {@code float[]} of a float vector, or null. */
  static float[] floats(OnHeapColumnVector v) {
    return (float[]) get(FLOAT_DATA, v);
  }

  /** The {@code int[]} of an int vector, or null. */
  static int[] ints(OnHeapColumnVector v) {
    return (int[]) get(INT_DATA, v);
  }

  /** The {@code byte[]} of a byte (or binary child) vector, or null. */
  static byte[] bytes(OnHeapColumnVector v) {
    return (byte[]) get(BYTE_DATA, v);
  }

  private static Object get(Field f, OnHeapColumnVector v) {
    if (f == null) {
      return null;
    }
    try {
      return f.get(v);
    } catch (IllegalAccessException | ClassCastException e) {
      return null;
    }
  }

  private static Field field(String name) {
    try {
      Field f = OnHeapColumnVector.class.getDeclaredField(name);
      f.setAccessible(true);
      return f;
    } catch (ReflectiveOperationException | RuntimeException e) {
      return null; // another Spark version: callers fall back to the per-value accessors
    }
  }
}
