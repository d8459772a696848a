package org.moespark.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One linear weight (or bias vector) of an MoE block, kept in its on-disk number format — no
 * decoding happens here (quantized formats are decoded by the layer with
 * {@code org.moespark.formats}). Orientation is always nn.Linear's {@code [out, in]} =
 * {@code [rows(), cols()]}, row-major; a bias or other vector of length n is {@code [1, n]}.
 *
 * <p>Formats (models-and-formats.md §2.5, §2.6, §3.8–3.10):
 * <ul>
 *   <li>{@link Format#F32}, {@link Format#F16}, {@link Format#BF16}: {@code data} holds
 *       rows × cols elements; no scales.
 *   <li>{@link Format#FP8_E4M3_BLOCK128}: {@code data} rows × cols E4M3FN bytes; {@code scales}
 *       {@code [ceil(rows/blockRows), ceil(cols/blockCols)]} row-major of {@link #scalesDtype()}
 *       F32 (DeepSeek's {@code weight_scale_inv}, a multiplier despite its name) or F8_E8M0
 *       (UE8M0 power-of-two scales). Dequant: {@code W[i][j] = e4m3(Wq[i][j]) ·
 *       S[i / blockRows][j / blockCols]}. The name keeps the usual 128 × 128 block; the block size
 *       actually used comes from {@code quantization_config.weight_block_size} and is reported by
 *       {@link #blockRows()} / {@link #blockCols()}.
 *   <li>{@link Format#MXFP4}: {@code data} rows × cols/2 bytes of E2M1 pairs (element 2j in the
 *       low nibble, 2j+1 in the high nibble), i.e. GPT-OSS's {@code [rows, cols/32, 16]} blocks;
 *       {@code scales} rows × cols/32 E8M0 bytes ({@link #scalesDtype()} is F8_E8M0 even when the
 *       file stores them as U8); value = LUT[nibble] · 2^(scale − 127).
 *   <li>{@link Format#NVFP4}: {@code data} rows × cols/2 packed E2M1 bytes (low nibble first);
 *       {@code scales} rows × cols/16 E4M3 bytes; {@link #globalScale()} is the FP32
 *       {@code weight_scale_2}; value = LUT[nibble] · e4m3(scale) · globalScale.
 *       {@link #inputScale()} is the optional activation {@code input_scale} (NaN if absent).
 * </ul>
 * Buffers are read-only, little-endian and direct (mapped from the checkpoint, or a materialized
 * copy for layouts that need one); the accessors return independent views (position 0).
 */
public final class WeightTensor {
  /** The number format of {@link #data()}. */
  public enum Format {
    F32(32),
    F16(16),
    BF16(16),
    FP8_E4M3_BLOCK128(8),
    MXFP4(4),
    NVFP4(4);

    private final int bits;

    Format(int bits) {
      this.bits = bits;
    }

    /** Bits per element of {@code data}. */
    public int bits() {
      return bits;
    }

    /** The unquantized format for a float dtype, or null. */
    public static Format ofFloat(DType d) {
      switch (d) {
        case F32:
          return F32;
        case F16:
          return F16;
        case BF16:
          return BF16;
        default:
          return null;
      }
    }

    /** The safetensors dtype of {@code data} for the unquantized formats, else null. */
    public DType dtype() {
      switch (this) {
        case F32:
          return DType.F32;
        case F16:
          return DType.F16;
        case BF16:
          return DType.BF16;
        default:
          return null;
      }
    }
  }

  private final String name;
  private final Format format;
  private final int rows;
  private final int cols;
  private final ByteBuffer data;
  private final ByteBuffer scales;
  private final DType scalesDtype;
  private final int blockRows;
  private final int blockCols;
  private final float globalScale;
  private final float inputScale;

  private WeightTensor(String name, Format format, int rows, int cols, ByteBuffer data, ByteBuffer scales,
      DType scalesDtype, int blockRows, int blockCols, float globalScale, float inputScale) {
    this.name = name;
    this.format = format;
    this.rows = rows;
    this.cols = cols;
    this.data = readOnly(data);
    this.scales = scales == null ? null : readOnly(scales);
    this.scalesDtype = scalesDtype;
    this.blockRows = blockRows;
    this.blockCols = blockCols;
    this.globalScale = globalScale;
    this.inputScale = inputScale;
  }

  private static ByteBuffer readOnly(ByteBuffer b) {
    return b.slice().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  private static void checkDims(String name, int rows, int cols) {
    if (rows < 0 || cols < 0) {
      throw new IllegalArgumentException("weight '" + name + "': rows and cols must be >= 0, got [" + rows + ", " + cols + "]");
    }
  }

  private static void checkBytes(String name, String what, ByteBuffer b, long expected) {
    if (b == null) {
      throw new IllegalArgumentException("weight '" + name + "': " + what + " must not be null");
    }
    if (b.remaining() != expected) {
      throw new IllegalArgumentException("weight '" + name + "': " + what + " must hold " + expected + " bytes, got "
          + b.remaining());
    }
  }

  /** An unquantized F32/F16/BF16 weight of {@code rows × cols} elements. */
  public static WeightTensor dense(String name, Format format, int rows, int cols, ByteBuffer data) {
    checkDims(name, rows, cols);
    if (format != Format.F32 && format != Format.F16 && format != Format.BF16) {
      throw new IllegalArgumentException("weight '" + name + "': dense() takes F32, F16 or BF16, got " + format);
    }
    checkBytes(name, "data", data, (long) rows * cols * (format.bits() / 8));
    return new WeightTensor(name, format, rows, cols, data, null, null, 0, 0, 1f, Float.NaN);
  }

  /** Block-FP8 (E4M3FN data, per-block F32 or E8M0 scales of a {@code blockRows × blockCols} tile). */
  public static WeightTensor fp8Block(String name, int rows, int cols, ByteBuffer data, ByteBuffer scales,
      DType scalesDtype, int blockRows, int blockCols) {
    checkDims(name, rows, cols);
    if (blockRows <= 0 || blockCols <= 0) {
      throw new IllegalArgumentException("weight '" + name + "': block size must be positive, got [" + blockRows + ", "
          + blockCols + "]");
    }
    if (scalesDtype != DType.F32 && scalesDtype != DType.F8_E8M0) {
      throw new IllegalArgumentException("weight '" + name + "': FP8 block scales must be F32 or F8_E8M0, got " + scalesDtype);
    }
    checkBytes(name, "data", data, (long) rows * cols);
    long sr = ceilDiv(rows, blockRows);
    long sc = ceilDiv(cols, blockCols);
    checkBytes(name, "scales", scales, sr * sc * (scalesDtype == DType.F32 ? 4 : 1));
    return new WeightTensor(name, Format.FP8_E4M3_BLOCK128, rows, cols, data, scales, scalesDtype, blockRows, blockCols,
        1f, Float.NaN);
  }

  /** MXFP4: rows × cols/2 packed E2M1 bytes and rows × cols/32 E8M0 scale bytes; cols % 32 == 0. */
  public static WeightTensor mxfp4(String name, int rows, int cols, ByteBuffer data, ByteBuffer scales) {
    checkDims(name, rows, cols);
    if (cols % 32 != 0) {
      throw new IllegalArgumentException("weight '" + name + "': MXFP4 needs cols % 32 == 0, got cols=" + cols);
    }
    checkBytes(name, "data", data, (long) rows * cols / 2);
    checkBytes(name, "scales", scales, (long) rows * cols / 32);
    return new WeightTensor(name, Format.MXFP4, rows, cols, data, scales, DType.F8_E8M0, 1, 32, 1f, Float.NaN);
  }

  /** NVFP4: rows × cols/2 packed E2M1 bytes, rows × cols/16 E4M3 scales, FP32 {@code weight_scale_2}; cols % 16 == 0. */
  public static WeightTensor nvfp4(String name, int rows, int cols, ByteBuffer data, ByteBuffer scales,
      float globalScale, float inputScale) {
    checkDims(name, rows, cols);
    if (cols % 16 != 0) {
      throw new IllegalArgumentException("weight '" + name + "': NVFP4 needs cols % 16 == 0, got cols=" + cols);
    }
    if (!(globalScale > 0) || Float.isInfinite(globalScale)) {
      throw new IllegalArgumentException("weight '" + name + "': weight_scale_2 must be positive and finite, got "
          + globalScale);
    }
    checkBytes(name, "data", data, (long) rows * cols / 2);
    checkBytes(name, "scales", scales, (long) rows * cols / 16);
    return new WeightTensor(name, Format.NVFP4, rows, cols, data, scales, DType.F8_E4M3, 1, 16, globalScale, inputScale);
  }

  static long ceilDiv(long a, long b) {
    return (a + b - 1) / b;
  }

  /** Source tensor name(s), for messages. */
  public String name() {
    return name;
  }

  public Format format() {
    return format;
  }

  /** Output features (first dim of nn.Linear's weight); 1 for a vector. */
  public int rows() {
    return rows;
  }

  /** Input features (second dim); the length for a vector. */
  public int cols() {
    return cols;
  }

  /** The element data, read-only, little-endian, position 0. */
  public ByteBuffer data() {
    return data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** The block scales (see the class comment), or null for unquantized formats. */
  public ByteBuffer scales() {
    return scales == null ? null : scales.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Dtype of {@link #scales()} (F32/F8_E8M0 for FP8, F8_E8M0 for MXFP4, F8_E4M3 for NVFP4), or null. */
  public DType scalesDtype() {
    return scalesDtype;
  }

  /** Rows per scale block (FP8: from weight_block_size; MXFP4/NVFP4: 1; unquantized: 0). */
  public int blockRows() {
    return blockRows;
  }

  /** Columns per scale block (FP8: from weight_block_size; MXFP4: 32; NVFP4: 16; unquantized: 0). */
  public int blockCols() {
    return blockCols;
  }

  /** Rows of the scale matrix (0 for unquantized). */
  public int scaleRows() {
    return blockRows == 0 ? 0 : (int) ceilDiv(rows, blockRows);
  }

  /** Columns of the scale matrix (0 for unquantized). */
  public int scaleCols() {
    return blockCols == 0 ? 0 : (int) ceilDiv(cols, blockCols);
  }

  /** NVFP4's per-tensor {@code weight_scale_2}; 1 for the other formats. */
  public float globalScale() {
    return globalScale;
  }

  /** NVFP4's activation {@code input_scale}, NaN when absent or not NVFP4. */
  public float inputScale() {
    return inputScale;
  }

  /** Whether {@link #format()} is F32, F16 or BF16. */
  public boolean isUnquantized() {
    return format.dtype() != null;
  }

  /**
   * Decodes an F32/F16/BF16 weight to a row-major float array of rows × cols. Quantized formats
   * fail: decode those with {@code org.moespark.formats}.
   */
  public float[] toFloatArray() {
    if (!isUnquantized()) {
      throw new IllegalStateException("weight '" + name + "' is " + format
          + "; toFloatArray() decodes only F32, F16 and BF16 (decode quantized formats with org.moespark.formats)");
    }
    long n = (long) rows * cols;
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalStateException("weight '" + name + "' has " + n + " elements, too many for one float[]");
    }
    return Tensor.decode(format.dtype(), data(), (int) n, name);
  }

  @Override
  public String toString() {
    return name + " " + format + "[" + rows + ", " + cols + "]";
  }
}
