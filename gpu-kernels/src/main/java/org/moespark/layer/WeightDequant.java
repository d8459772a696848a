package org.moespark.layer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.moespark.formats.Bf16;
import org.moespark.formats.BlockFp8;
import org.moespark.formats.Mxfp;
import org.moespark.formats.Nvfp4;

/**
 * Dequantization of stored expert weights to fp32, done once at load (the codecs are
 * {@code org.moespark.formats}'; this class fixes the layouts and checks the shapes). Every method returns a fresh
 * row-major {@code float[rows·cols]} in {@code nn.Linear} layout ({@code [out, in]}); quantization
 * blocks run along the input ({@code cols}, reduction) axis unless stated otherwise. Buffers are read
 * from their position, must hold exactly the bytes the shape needs ({@code remaining()}), are read as
 * little-endian where it matters, and are not modified.
 */
public final class WeightDequant {
  private WeightDequant() {}

  /** bf16 (the upper 16 bits of an fp32), little-endian {@code [rows·cols]} 16-bit values. */
  public static float[] bf16(ByteBuffer data, int rows, int cols) {
    int n = count(rows, cols);
    need("bf16 weight", data, 2L * n);
    float[] out = new float[n];
    Bf16.decode(data.duplicate().order(ByteOrder.LITTLE_ENDIAN), out, 0, n);
    return out;
  }

  /**
   * DeepSeek-V3 block FP8: {@code W[i][j] = e4m3(q[i][j]) · scaleInv[i / blockRows][j / blockCols]},
   * {@code scaleInv} row-major {@code [ceil(rows/blockRows), ceil(cols/blockCols)]} (a multiplier despite
   * its name; ragged last blocks allowed). The release uses 128×128 blocks.
   */
  public static float[] fp8Block(ByteBuffer e4m3, float[] scaleInv, int rows, int cols, int blockRows,
      int blockCols) {
    int n = count(rows, cols);
    if (blockRows <= 0 || blockCols <= 0) {
      throw new IllegalArgumentException("FP8 block must be positive, got [" + blockRows + ", " + blockCols + "]");
    }
    need("FP8 weight", e4m3, n);
    int sr = (rows + blockRows - 1) / blockRows;
    int sc = (cols + blockCols - 1) / blockCols;
    if (scaleInv == null || scaleInv.length != (long) sr * sc) {
      throw new IllegalArgumentException("weight_scale_inv must be [" + sr + ", " + sc + "] = " + (long) sr * sc
          + " floats for a [" + rows + ", " + cols + "] weight with " + blockRows + "×" + blockCols + " blocks, got "
          + (scaleInv == null ? "null" : scaleInv.length));
    }
    byte[] q = new byte[n];
    e4m3.duplicate().get(q);
    float[] out = new float[n];
    BlockFp8.dequantize(q, scaleInv, rows, cols, blockRows, blockCols, out);
    return out;
  }

  /**
   * GPT-OSS MXFP4: {@code blocks} {@code [rows, cols/32, 16]} bytes, element {@code 2j} of a block in the
   * low nibble of byte {@code j} and {@code 2j+1} in the high nibble; {@code scales} {@code [rows, cols/32]}
   * E8M0 bytes; value = {@code e2m1(nibble) · 2^(scale − 127)} (scale byte 255 = NaN). This is the
   * on-disk out-major layout; transformers' transpose to {@code [in, out]} is not applied here.
   */
  public static float[] mxfp4(ByteBuffer blocks, ByteBuffer scales, int rows, int cols) {
    int n = count(rows, cols);
    if (cols % 32 != 0) {
      throw new IllegalArgumentException("MXFP4 weight width must be a multiple of 32, got " + cols);
    }
    need("MXFP4 blocks", blocks, (long) n / 2);
    need("MXFP4 scales", scales, (long) n / 32);
    float[] out = new float[n];
    Mxfp.dequantize(Mxfp.Kind.MXFP4, blocks.duplicate(), scales.duplicate(), rows, cols, out);
    return out;
  }

  /**
   * NVFP4 as NVIDIA ModelOpt exports it: {@code packed} {@code [rows, cols/2]} bytes (low nibble first),
   * {@code scales} {@code [rows, cols/16]} E4M3 bytes, {@code globalScale} = {@code weight_scale_2}
   * (a multiplier): {@code W = e2m1(q) · e4m3(scale) · globalScale}.
   */
  public static float[] nvfp4(ByteBuffer packed, ByteBuffer scales, float globalScale, int rows, int cols) {
    int n = count(rows, cols);
    if (cols % 16 != 0) {
      throw new IllegalArgumentException("NVFP4 weight width must be a multiple of 16, got " + cols);
    }
    if (!Float.isFinite(globalScale)) {
      throw new IllegalArgumentException("NVFP4 weight_scale_2 must be finite, got " + globalScale);
    }
    need("NVFP4 weight", packed, (long) n / 2);
    need("NVFP4 weight_scale", scales, (long) n / 16);
    float[] out = new float[n];
    Nvfp4.dequantize(packed.duplicate(), scales.duplicate(), globalScale, rows, cols, out);
    return out;
  }

  /**
   * TensorRT {@code IMoELayer} NVFP4 double quantization of an fp32 weight, returned dequantized (what
   * the layer's GEMM sees), for a weight {@code [rows, cols]} with blocks of 16 along {@code cols}:
   *
   * <pre>
   *   s'  = e4m3sat(blockScale / dblq) · dblq         Q/DQ of the FP8 block scale with the fp32 dbl-q scale
   *   W'  = e2m1sat(W / s') · s'                      Q/DQ of the weight to FP4 with the dequantized scale
   * </pre>
   *
   * Both quantizations round to nearest even and saturate (±448, ±6). A block whose dequantized scale
   * is 0 dequantizes to 0; a NaN weight stays NaN.
   *
   * @param blockScales {@code [rows, cols/16]} fp32 block scales (before their FP8 quantization)
   * @param dblq the per-tensor (per-expert) fp32 double-quantization scale, > 0 and finite
   */
  public static float[] nvfp4DoubleQuantized(float[] w, int rows, int cols, float[] blockScales, float dblq) {
    int n = count(rows, cols);
    if (cols % 16 != 0) {
      throw new IllegalArgumentException("NVFP4 weight width must be a multiple of 16, got " + cols);
    }
    if (w == null || w.length != n) {
      throw new IllegalArgumentException("weight must be [" + rows + ", " + cols + "] = " + n + " floats, got "
          + (w == null ? "null" : w.length));
    }
    if (blockScales == null || blockScales.length != n / 16) {
      throw new IllegalArgumentException("block scales must be [" + rows + ", " + cols / 16 + "] = " + n / 16
          + " floats, got " + (blockScales == null ? "null" : blockScales.length));
    }
    if (!(dblq > 0 && Float.isFinite(dblq))) {
      throw new IllegalArgumentException("double-quantization scale must be finite and > 0, got " + dblq);
    }
    float[] out = new float[n];
    for (int blk = 0; blk < n / 16; blk++) {
      float s = LayerNumerics.fp8QuantDequant(blockScales[blk], dblq);
      for (int i = blk * 16; i < blk * 16 + 16; i++) {
        float v = w[i];
        if (Float.isNaN(v)) {
          out[i] = v;
        } else if (s == 0f) {
          out[i] = 0f;
        } else {
          out[i] = LayerNumerics.e2m1Decode(LayerNumerics.e2m1EncodeSaturating(v / s)) * s;
        }
      }
    }
    return out;
  }

  private static int count(int rows, int cols) {
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("weight shape must be positive, got [" + rows + ", " + cols + "]");
    }
    long n = (long) rows * cols;
    if (n > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("weight [" + rows + ", " + cols + "] has " + n
          + " elements, more than one Java array holds");
    }
    return (int) n;
  }

  private static void need(String what, ByteBuffer b, long bytes) {
    if (b == null) {
      throw new IllegalArgumentException(what + " buffer must not be null");
    }
    if (b.remaining() != bytes) {
      throw new IllegalArgumentException(what + " must hold " + bytes + " bytes, got " + b.remaining());
    }
  }
}
