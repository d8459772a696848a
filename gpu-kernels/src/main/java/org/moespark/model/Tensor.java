package org.moespark.model;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * One tensor of a {@link SafeTensors} file: name, dtype, shape (outermost first, row-major) and
 * its bytes as read-only little-endian views of the memory-mapped file. Nothing is copied until
 * {@link #toFloatArray()}.
 */
public final class Tensor {
  private final SafeTensors file;
  private final String name;
  private final DType dtype;
  private final long[] shape;
  private final long offset;
  private final long byteSize;

  Tensor(SafeTensors file, String name, DType dtype, long[] shape, long offset, long byteSize) {
    this.file = file;
    this.name = name;
    this.dtype = dtype;
    this.shape = shape;
    this.offset = offset;
    this.byteSize = byteSize;
  }

  public String name() {
    return name;
  }

  public DType dtype() {
    return dtype;
  }

  /** A copy of the shape (may be empty for a scalar). */
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  /** Size of dimension {@code i}. */
  public long dim(int i) {
    if (i < 0 || i >= shape.length) {
      throw new IndexOutOfBoundsException("dimension " + i + " of tensor '" + name + "' with shape "
          + Arrays.toString(shape));
    }
    return shape[i];
  }

  /** Number of (logical) elements; 1 for a scalar. */
  public long numel() {
    long n = 1;
    for (long d : shape) {
      n *= d; // checked for overflow when the header was validated
    }
    return n;
  }

  /** Exact byte length of the data. */
  public long byteSize() {
    return byteSize;
  }

  /** The file holding this tensor. */
  public Path file() {
    return file.path();
  }

  /** Whether the shape equals {@code expected}. */
  public boolean hasShape(long... expected) {
    return Arrays.equals(shape, expected);
  }

  /**
   * The whole tensor as a read-only little-endian buffer (position 0, limit = byte size); a
   * direct buffer backed by the mapped file. Fails for tensors over 2^31 − 1 bytes: read those in
   * parts with {@link #data(long, int)}.
   */
  public ByteBuffer data() {
    if (byteSize > Integer.MAX_VALUE) {
      throw new SafeTensorsException("tensor '" + name + "' in " + file.path() + " is " + byteSize
          + " bytes, more than one ByteBuffer can hold; read it in parts with data(offset, length)");
    }
    return file.slice(offset, (int) byteSize);
  }

  /** {@code length} bytes starting {@code byteOffset} bytes into this tensor, read-only little-endian. */
  public ByteBuffer data(long byteOffset, int length) {
    if (byteOffset < 0 || length < 0 || byteOffset > byteSize - length) {
      throw new IndexOutOfBoundsException("bytes [" + byteOffset + ", " + byteOffset + "+" + length
          + ") outside tensor '" + name + "' of " + byteSize + " bytes");
    }
    return file.slice(offset + byteOffset, length);
  }

  /**
   * Decodes an F32, F16, BF16 or F64 tensor into a new float array (F64 rounds to nearest float).
   * Other dtypes fail: quantized formats are decoded with {@code org.moespark.formats}.
   */
  public float[] toFloatArray() {
    long n = numel();
    if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16 && dtype != DType.F64) {
      throw new SafeTensorsException("tensor '" + name + "' in " + file.path() + " has dtype " + dtype
          + "; toFloatArray() decodes only F32, F16, BF16 and F64 (decode quantized formats with org.moespark.formats)");
    }
    if (n > Integer.MAX_VALUE - 8) {
      throw new SafeTensorsException("tensor '" + name + "' in " + file.path() + " has " + n
          + " elements, too many for one float[]");
    }
    return decode(dtype, data(), (int) n, name);
  }

  static float[] decode(DType dtype, ByteBuffer b, int n, String what) {
    float[] out = new float[n];
    if (dtype == DType.F32) {
      b.asFloatBuffer().get(out);
      return out;
    }
    if (dtype != DType.F64 && dtype != DType.BF16 && dtype != DType.F16) {
      throw new SafeTensorsException(what + ": cannot decode dtype " + dtype + " to floats");
    }
    // large tensors (expert weights, loaded once per executor) decode in blocks on the fork-join pool;
    // absolute reads on a duplicate per block, disjoint writes
    int block = 1 << 18;
    int blocks = (n + block - 1) / block;
    java.util.stream.IntStream ids = java.util.stream.IntStream.range(0, blocks);
    (blocks > 4 ? ids.parallel() : ids).forEach(k -> {
      ByteBuffer d = b.duplicate().order(b.order());
      int lo = k * block;
      int hi = Math.min(n, lo + block);
      switch (dtype) {
        case F64 -> {
          for (int i = lo; i < hi; i++) {
            out[i] = (float) d.getDouble(i * 8);
          }
        }
        case BF16 -> {
          for (int i = lo; i < hi; i++) {
            out[i] = org.moespark.formats.Bf16.decode(d.getShort(i * 2));
          }
        }
        default -> {
          for (int i = lo; i < hi; i++) {
            out[i] = org.moespark.formats.Fp16.decode(d.getShort(i * 2));
          }
        }
      }
    });
    return out;
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape);
  }
}
