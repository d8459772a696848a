package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * Block-scaled FP8 E4M3: a row-major [rows, cols] matrix split into blockRows × blockCols tiles, one
 * fp32 dequantization scale per tile. DeepSeek-V3 uses 128×128 tiles for weights ({@code weight} +
 * {@code weight_scale_inv} F32 [ceil(rows/128), ceil(cols/128)]) and 1×128 groups for activations;
 * edge tiles may be partial. Scales are stored row-major [ceil(rows/blockRows), ceil(cols/blockCols)].
 *
 * <p>Dequantization (DeepSeek {@code weight_dequant}): {@code w = float(q) · scaleInv[tile]}, fp32;
 * NaN results are the canonical quiet NaN 0x7FC00000 (CPU and GPU alike).
 *
 * <p>Quantization follows the Paddle kernels ({@code ComputeScale} in {@code quant_utils.h}, spec
 * moe-ops-semantics §4.2 / §15b), per tile:
 * <pre>
 *   amax = max |x| over the tile, NaN elements ignored
 *   s    = amax == 0 ? 1 : 448 / amax                  (quantization scale, fp32 division)
 *          s = +inf → 2^127 when pow2, else 0x1.FEp127 (bf16 max); s = 0 (amax = inf) stays 0
 *          pow2 → 2^floor(log2 s)  (the quant scale is rounded DOWN, so 1/s is rounded up)
 *   q    = e4m3_satfinite(x · s)                        (fp32 multiply, then RNE with saturation)
 *   scaleInv = 1 / s                                   (what is stored)
 * </pre>
 * So an all-zero tile stores scale 1 and zeros; an infinite element gives s = 0, NaN in that element
 * (inf·0), zeros elsewhere and scaleInv = inf. With pow2 off this is also transformers'
 * {@code Fp8Quantize} weight rule ({@code scale = 448/amax}, 1 if amax = 0, clamp, cast).
 *
 * <p>{@link ScaleRule#DEEPSEEK} is DeepSeek-V3's run-time activation rule ({@code act_quant} in
 * {@code inference/kernel.py}, also transformers' FP8 linear): per tile
 * <pre>
 *   s = max(amax, 1e-4) / 448                 (the dequantization scale, stored as is)
 *   ue8m0 (pow2) → s = 2^ceil(log2 s)         (rounded UP: DeepSeek-V3.1/V3.2 scale_fmt "ue8m0")
 *   q = e4m3_satfinite(x / s)                 (fp32 division)
 * </pre>
 * {@code x / s} and {@code x · (448/amax)} can differ in the last fp32 bit before the FP8 rounding,
 * so the two rules are not interchangeable bit for bit. DeepSeek computes ceil(log2) with fp32
 * {@code log2}/{@code exp2}; ours is exact. Pow2 scales of either rule are exact powers of two and can
 * be stored as E8M0 with {@link #scalesToE8m0}.
 */
public final class BlockFp8 {
  private BlockFp8() {}

  /** DeepSeek's block edge. */
  public static final int BLOCK = 128;
  /** bf16 max (0x7F7F), Paddle's stand-in for an infinite non-pow2 quant scale. */
  public static final float BF16_MAX = 0x1.FEp127f;

  /** How a tile's scale is derived from its amax (see the class comment). */
  public enum ScaleRule {
    /** Paddle {@code ComputeScale}: quant scale 448/amax, pow2 floors it; stores its reciprocal. */
    PADDLE,
    /** DeepSeek {@code act_quant}: dequant scale max(amax, 1e-4)/448, pow2 (ue8m0) ceils it; q = x / s. */
    DEEPSEEK;

    /** The stable integer id used by the GPU entry points. */
    int id() {
      return ordinal();
    }
  }

  /** DeepSeek's floor on amax. */
  public static final float DEEPSEEK_AMAX_FLOOR = 1e-4f;

  /** The DeepSeek dequantization scale of a tile: {@code max(amax, 1e-4) / 448}, ue8m0 → 2^ceil(log2). */
  public static float deepSeekScale(float amax, boolean ue8m0) {
    // written as a comparison (not Math.max) so that a NaN amax also takes the floor, as on the GPU
    float s = (amax > DEEPSEEK_AMAX_FLOOR ? amax : DEEPSEEK_AMAX_FLOOR) / Fp8E4m3.MAX;
    if (ue8m0 && s > 0 && !Float.isInfinite(s)) {
      int f = MiniFloat.floorLog2(s);
      s = MiniFloat.pow2(MiniFloat.pow2(f) == s ? f : f + 1);
    }
    return s;
  }

  /** The quantization scale s for a tile with the given amax (see the class comment). */
  public static float quantScale(float amax, boolean pow2) {
    if (amax == 0f) {
      return 1f;
    }
    float s = Fp8E4m3.MAX / amax;
    if (Float.isInfinite(s)) {
      return pow2 ? 0x1p127f : BF16_MAX;
    }
    if (s == 0f) {
      return 0f;
    }
    if (pow2) {
      return MiniFloat.pow2(MiniFloat.floorLog2(s));
    }
    return s;
  }

  /** Rows of the scale matrix: ceil(rows / blockRows). */
  public static int scaleRows(int rows, int blockRows) {
    return (rows + blockRows - 1) / blockRows;
  }

  /** Columns of the scale matrix: ceil(cols / blockCols). */
  public static int scaleCols(int cols, int blockCols) {
    return (cols + blockCols - 1) / blockCols;
  }

  private static void checkShape(int rows, int cols, int blockRows, int blockCols, String what) {
    Checks.shape(rows, cols, what);
    if (blockRows < 1 || blockCols < 1) {
      throw new IllegalArgumentException(what + ": block must be at least 1x1, got " + blockRows + "x" + blockCols);
    }
    Checks.toInt((long) rows * cols, what + " rows*cols");
  }

  /** 1×128 activation groups (DeepSeek {@code act_quant} granularity). */
  public static void quantizeActivations(float[] x, int rows, int cols, boolean pow2, byte[] q, float[] scaleInv) {
    quantize(x, rows, cols, 1, BLOCK, pow2, q, scaleInv);
  }

  /** 128×128 weight tiles (DeepSeek {@code weight_scale_inv} granularity). */
  public static void quantizeWeights(float[] w, int rows, int cols, boolean pow2, byte[] q, float[] scaleInv) {
    quantize(w, rows, cols, BLOCK, BLOCK, pow2, q, scaleInv);
  }

  /**
   * Quantizes a row-major [rows, cols] matrix with blockRows × blockCols tiles.
   *
   * @param q out, rows·cols E4M3 codes
   * @param scaleInv out, scaleRows·scaleCols fp32 dequantization scales (1/s)
   */
  public static void quantize(float[] x, int rows, int cols, int blockRows, int blockCols, boolean pow2, byte[] q,
      float[] scaleInv) {
    quantize(ScaleRule.PADDLE, x, rows, cols, blockRows, blockCols, pow2, q, scaleInv);
  }

  /** DeepSeek {@code act_quant}: 1×128 groups, {@link ScaleRule#DEEPSEEK}; ue8m0 rounds scales up to powers of two. */
  public static void quantizeActivationsDeepSeek(float[] x, int rows, int cols, boolean ue8m0, byte[] q,
      float[] scales) {
    quantize(ScaleRule.DEEPSEEK, x, rows, cols, 1, BLOCK, ue8m0, q, scales);
  }

  /**
   * Quantizes a row-major [rows, cols] matrix with blockRows × blockCols tiles under the given rule.
   *
   * @param q out, rows·cols E4M3 codes
   * @param scaleInv out, scaleRows·scaleCols fp32 dequantization scales
   */
  public static void quantize(ScaleRule rule, float[] x, int rows, int cols, int blockRows, int blockCols,
      boolean pow2, byte[] q, float[] scaleInv) {
    if (rule == null) {
      throw new IllegalArgumentException("BlockFp8.quantize: rule is null");
    }
    checkShape(rows, cols, blockRows, blockCols, "BlockFp8.quantize");
    Checks.length(x.length, (long) rows * cols, "BlockFp8.quantize x");
    Checks.length(q.length, (long) rows * cols, "BlockFp8.quantize q");
    int sr = scaleRows(rows, blockRows);
    int sc = scaleCols(cols, blockCols);
    Checks.length(scaleInv.length, (long) sr * sc, "BlockFp8.quantize scaleInv");
    for (int br = 0; br < sr; br++) {
      int r0 = br * blockRows;
      int r1 = Math.min(rows, r0 + blockRows);
      for (int bc = 0; bc < sc; bc++) {
        int c0 = bc * blockCols;
        int c1 = Math.min(cols, c0 + blockCols);
        float amax = 0f;
        for (int r = r0; r < r1; r++) {
          for (int c = c0; c < c1; c++) {
            float a = Math.abs(x[r * cols + c]);
            if (a > amax) {
              amax = a;
            }
          }
        }
        if (rule == ScaleRule.PADDLE) {
          float s = quantScale(amax, pow2);
          scaleInv[br * sc + bc] = 1f / s;
          for (int r = r0; r < r1; r++) {
            for (int c = c0; c < c1; c++) {
              q[r * cols + c] = Fp8E4m3.encodeSaturating(x[r * cols + c] * s);
            }
          }
        } else {
          float s = deepSeekScale(amax, pow2);
          scaleInv[br * sc + bc] = s;
          for (int r = r0; r < r1; r++) {
            for (int c = c0; c < c1; c++) {
              q[r * cols + c] = Fp8E4m3.encodeSaturating(x[r * cols + c] / s);
            }
          }
        }
      }
    }
  }

  /** Dequantizes into out[0 .. rows·cols). */
  public static void dequantize(byte[] q, float[] scaleInv, int rows, int cols, int blockRows, int blockCols,
      float[] out) {
    checkShape(rows, cols, blockRows, blockCols, "BlockFp8.dequantize");
    Checks.length(q.length, (long) rows * cols, "BlockFp8.dequantize q");
    int sc = scaleCols(cols, blockCols);
    Checks.length(scaleInv.length, (long) scaleRows(rows, blockRows) * sc, "BlockFp8.dequantize scaleInv");
    Checks.length(out.length, (long) rows * cols, "BlockFp8.dequantize out");
    for (int r = 0; r < rows; r++) {
      int srow = (r / blockRows) * sc;
      for (int bc = 0; bc < sc; bc++) {
        float scale = scaleInv[srow + bc];
        int end = r * cols + Math.min(cols, (bc + 1) * blockCols);
        for (int i = r * cols + bc * blockCols; i < end; i++) {
          out[i] = MiniFloat.canonicalNaN(Fp8E4m3.decode(q[i]) * scale);
        }
      }
    }
  }

  /**
   * Dequantizes from buffers positioned at the E4M3 codes and the fp32 (little-endian) scales, e.g. a
   * DeepSeek {@code weight} / {@code weight_scale_inv} pair mapped from safetensors.
   */
  public static void dequantize(ByteBuffer q, ByteBuffer scaleInv, int rows, int cols, int blockRows, int blockCols,
      float[] out) {
    checkShape(rows, cols, blockRows, blockCols, "BlockFp8.dequantize");
    int sc = scaleCols(cols, blockCols);
    ByteBuffer qb = Checks.le(q, (long) rows * cols, "BlockFp8.dequantize q");
    ByteBuffer sb = Checks.le(scaleInv, 4L * scaleRows(rows, blockRows) * sc, "BlockFp8.dequantize scaleInv");
    Checks.length(out.length, (long) rows * cols, "BlockFp8.dequantize out");
    for (int r = 0; r < rows; r++) {
      int srow = (r / blockRows) * sc;
      for (int bc = 0; bc < sc; bc++) {
        float scale = sb.getFloat(4 * (srow + bc));
        int end = r * cols + Math.min(cols, (bc + 1) * blockCols);
        for (int i = r * cols + bc * blockCols; i < end; i++) {
          out[i] = MiniFloat.canonicalNaN(Fp8E4m3.decode(qb.get(i)) * scale);
        }
      }
    }
  }

  /** Power-of-two fp32 scales → E8M0 codes (DeepSeek "ue8m0" storage); a non-power-of-two is rejected. */
  public static void scalesToE8m0(float[] scales, int offset, byte[] dst, int dstOffset, int n) {
    Checks.range(scales.length, offset, n, "BlockFp8.scalesToE8m0 scales");
    Checks.range(dst.length, dstOffset, n, "BlockFp8.scalesToE8m0 dst");
    for (int i = 0; i < n; i++) {
      try {
        dst[dstOffset + i] = E8m0.ofPowerOfTwo(scales[offset + i]);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("BlockFp8.scalesToE8m0: scale " + (offset + i) + ": " + e.getMessage(), e);
      }
    }
  }
}
