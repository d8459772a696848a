package org.moespark.formats;

import java.nio.ByteBuffer;

/**
 * NVFP4 (NVIDIA ModelOpt "NVFP4"): E2M1 elements in blocks of {@value #BLOCK} consecutive elements
 * along a row (the input / K dimension), one positive E4M3 scale per block, and one fp32 per-tensor
 * second-level scale.
 *
 * <p>Layout of a [rows, cols] matrix, as ModelOpt exports it ({@code unified_export_hf.py}):
 * {@code weight} U8 [rows, cols/2] packed E2M1, element 2k in the low nibble; {@code weight_scale}
 * F8_E4M3 [rows, cols/16] row-major; {@code weight_scale_2} F32 scalar (the "global scale" here, a
 * dequantization multiplier). compressed-tensors checkpoints store {@code weight_global_scale} =
 * 1 / weight_scale_2: pass its reciprocal.
 *
 * <p>Dequantization, in this fp32 evaluation order (the GPU does the same):
 * {@code w = (E2M1[q] * float(scale_e4m3)) * globalScale} (the first product is exact). A NaN result
 * (only from a NaN scale byte) is the canonical quiet NaN 0x7FC00000 on CPU and GPU alike.
 *
 * <p>Quantization follows ModelOpt {@code NVFP4QTensor}:
 * <pre>
 *   globalScale = amax(|W|) / 2688                      (2688 = 6 · 448, fp32 division)
 *   blockScale  = e4m3(amax(|block|) / (6 · globalScale)),  a result of 0 (or NaN) → 1.0
 *   q           = e2m1(w / (float(blockScale) · globalScale))
 * </pre>
 * Intended behaviour where ModelOpt's degenerates (documented differences): the block scale is cast
 * with {@link Fp8E4m3#encodeSaturating} (ModelOpt's torch cast would give NaN above 464, reachable
 * only with a caller-supplied global scale that is too small); when the divisor
 * {@code float(blockScale) · globalScale} is 0 (all-zero tensor, or a block scale that underflows
 * E4M3) the block's codes are 0 instead of ModelOpt's ±6/NaN from a division by zero. amax ignores
 * NaN elements. Elements use {@link Fp4E2m1#encode} (RNE, saturating at ±6).
 */
public final class Nvfp4 {
  private Nvfp4() {}

  /** Elements per block scale. */
  public static final int BLOCK = 16;
  /** 6 · 448: the E2M1 max times the E4M3 max. */
  public static final float GLOBAL_DIVISOR = 2688f;

  /** ModelOpt's {@code weight_scale_2} for a tensor with the given amax: {@code amax / 2688}. */
  public static float globalScale(float amax) {
    return amax / GLOBAL_DIVISOR;
  }

  /** max |x| over x[offset .. offset+n), NaN elements ignored; 0 for n = 0. */
  public static float absMax(float[] x, int offset, int n) {
    Checks.range(x.length, offset, n, "Nvfp4.absMax x");
    float m = 0f;
    for (int i = 0; i < n; i++) {
      float a = Math.abs(x[offset + i]);
      if (a > m) {
        m = a;
      }
    }
    return m;
  }

  /** The E4M3 code of a block's scale: {@code e4m3_sat(blockAmax / (6 · globalScale))}, 0/NaN → 1.0. */
  public static byte blockScale(float blockAmax, float globalScale) {
    float s = blockAmax / (6f * globalScale);
    if (s == 0f || Float.isNaN(s)) {
      s = 1f;
    }
    return Fp8E4m3.encodeSaturating(s);
  }

  private static void checkShape(int rows, int cols, String what) {
    Checks.shape(rows, cols, what);
    if (cols % BLOCK != 0) {
      throw new IllegalArgumentException(what + ": cols must be a multiple of " + BLOCK + ", got " + cols);
    }
    Checks.toInt((long) rows * cols, what + " rows*cols");
  }

  private static void checkGlobalScale(float g, String what) {
    if (!(g >= 0f) || Float.isInfinite(g)) {
      throw new IllegalArgumentException(what + ": global scale must be finite and >= 0, got " + g);
    }
  }

  /**
   * Quantizes a row-major [rows, cols] matrix (cols a multiple of 16) with the global scale taken
   * from its amax; returns that global scale ({@code weight_scale_2}).
   *
   * @param packed out, rows·cols/2 bytes
   * @param scales out, rows·cols/16 E4M3 codes
   */
  public static float quantize(float[] w, int rows, int cols, byte[] packed, byte[] scales) {
    checkShape(rows, cols, "Nvfp4.quantize");
    Checks.length(w.length, (long) rows * cols, "Nvfp4.quantize w");
    float g = globalScale(absMax(w, 0, rows * cols));
    quantize(w, rows, cols, g, packed, scales);
    return g;
  }

  /** Quantizes with a given global scale (e.g. an activation's {@code input_scale}). */
  public static void quantize(float[] w, int rows, int cols, float globalScale, byte[] packed, byte[] scales) {
    checkShape(rows, cols, "Nvfp4.quantize");
    checkGlobalScale(globalScale, "Nvfp4.quantize");
    long n = (long) rows * cols;
    Checks.length(w.length, n, "Nvfp4.quantize w");
    Checks.length(packed.length, n / 2, "Nvfp4.quantize packed");
    Checks.length(scales.length, n / BLOCK, "Nvfp4.quantize scales");
    int blocks = (int) (n / BLOCK);
    for (int b = 0; b < blocks; b++) {
      int base = b * BLOCK;
      byte sc = blockScale(absMax(w, base, BLOCK), globalScale);
      scales[b] = sc;
      float divisor = Fp8E4m3.decode(sc) * globalScale;
      for (int j = 0; j < BLOCK; j += 2) {
        int lo = divisor == 0f ? 0 : Fp4E2m1.encode(w[base + j] / divisor);
        int hi = divisor == 0f ? 0 : Fp4E2m1.encode(w[base + j + 1] / divisor);
        packed[(base + j) / 2] = Fp4E2m1.pack(lo, hi);
      }
    }
  }

  /** Dequantizes into out[0 .. rows·cols). */
  public static void dequantize(byte[] packed, byte[] scales, float globalScale, int rows, int cols, float[] out) {
    dequantize(ByteBuffer.wrap(packed), ByteBuffer.wrap(scales), globalScale, rows, cols, out);
  }

  /**
   * Dequantizes from buffers positioned at the packed elements and the E4M3 scales (e.g. mapped
   * safetensors tensors) into out[0 .. rows·cols).
   */
  public static void dequantize(ByteBuffer packed, ByteBuffer scales, float globalScale, int rows, int cols,
      float[] out) {
    checkShape(rows, cols, "Nvfp4.dequantize");
    if (Float.isNaN(globalScale) || Float.isInfinite(globalScale)) {
      throw new IllegalArgumentException("Nvfp4.dequantize: global scale must be finite, got " + globalScale);
    }
    long n = (long) rows * cols;
    ByteBuffer p = Checks.le(packed, n / 2, "Nvfp4.dequantize packed");
    ByteBuffer s = Checks.le(scales, n / BLOCK, "Nvfp4.dequantize scales");
    Checks.length(out.length, n, "Nvfp4.dequantize out");
    int blocks = (int) (n / BLOCK);
    for (int blk = 0; blk < blocks; blk++) {
      float bs = Fp8E4m3.decode(s.get(blk));
      int base = blk * BLOCK;
      for (int j = 0; j < BLOCK / 2; j++) {
        int v = p.get(blk * (BLOCK / 2) + j);
        out[base + 2 * j] = MiniFloat.canonicalNaN((Fp4E2m1.decode(v) * bs) * globalScale);
        out[base + 2 * j + 1] = MiniFloat.canonicalNaN((Fp4E2m1.decode(v >>> 4) * bs) * globalScale);
      }
    }
  }
}
