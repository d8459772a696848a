package org.moespark.ops;

import static org.moespark.ops.OpChecks.elements;
import static org.moespark.ops.OpChecks.fail;
import static org.moespark.ops.OpChecks.length;
import static org.moespark.ops.OpChecks.nonNegative;
import static org.moespark.ops.OpChecks.nonNull;

import org.moespark.formats.Bf16;
import org.moespark.formats.Fp8E4m3;

/**
 * Paddle incubate {@code fused_transpose_split_quant} (moe-ops-semantics.md §4): quantise
 * {@code x [M, K]} to FP8 e4m3 with one scale per (128 consecutive tokens) × (1 column), transpose
 * to {@code [K, M]} and split the tokens into one output per expert. Java reference and CPU backend.
 *
 * <pre>
 * (fp8 input: x = bf16_rne(float(x_fp8) * inputScales[m][k / 128]) first)
 * for each 128-row block b and column k:
 *   amax = max |x[m][k]| over the block (NaN elements ignored, like __hmax)
 *   s = amax == 0 ? 1 : 448f / amax                         (fp32 quant scale)
 *       s == +inf → bf16 max 0x1.FEp127 (2^127 with pow2Scales); s == 0 (amax = inf) stays 0
 *       pow2Scales → s = 2^floor(log2 s)                      (floor of the QUANT scale)
 *   q[m][k] = e4m3_rne_satfinite(float(x[m][k]) * s)
 *   outs[i][k][m - start_i] = q[m][k];  scales[i][b - start_i/128][k] = 1f / s   (dequant scale)
 * </pre>
 *
 * Scale shape is {@code [tpe_i / 128, K]} (the seed's {@code [K // 128, tpe // 128]} is wrong, its own
 * example prints {@code [1, 512]}); {@code pow2Scales} floors the quant scale (so the dequant scale is
 * rounded <i>up</i>), not "to the nearest power of 2" as the seed says (§16.16). Upstream silently
 * mis-assigns blocks when a {@code tokens_per_expert} entry is not a multiple of 128 and drops a
 * remainder of M; here both are rejected. An inf element makes its block's scale 0, the element NaN,
 * the other elements 0 and the dequant scale inf — exactly as upstream.
 */
public final class FusedTransposeSplitQuant {
  /** Tokens per scale block. */
  public static final int BLOCK = 128;
  /** Largest K upstream can launch (grid.y ≤ 65535 blocks of 128 columns). */
  public static final int MAX_K = 65535 * BLOCK;

  private static final float E4M3_MAX = 448f;
  private static final float BF16_MAX = 0x1.FEp127f;

  private FusedTransposeSplitQuant() {}

  /**
   * One output per expert.
   *
   * @param outs {@code outs[i]} is {@code [K, tokensPerExpert[i]]} e4m3 bits, row-major
   * @param scales {@code scales[i]} is {@code [tokensPerExpert[i] / 128, K]} fp32 dequant scales
   */
  public record Result(int k, int[] tokensPerExpert, byte[][] outs, float[][] scales) {}

  /**
   * Quantises bf16 input.
   *
   * @param x {@code [m, k]} bf16 bits
   * @param m tokens, a multiple of 128 (0 allowed)
   * @param k features (0 allowed, at most {@link #MAX_K})
   * @param tokensPerExpert each a multiple of 128 (0 allowed), summing to m
   * @param pow2Scales floor the quant scales to powers of two
   */
  public static Result quantize(short[] x, int m, int k, int[] tokensPerExpert, boolean pow2Scales) {
    String op = "FusedTransposeSplitQuant";
    check(op, m, k, tokensPerExpert);
    nonNull(op, "x", x);
    length(op, "x", x.length, (long) m * k, "[" + m + ", " + k + "]");
    float[] xf = new float[elements(op, "x", m, k)];
    for (int i = 0; i < xf.length; i++) {
      xf[i] = Bf16.decode(x[i]);
    }
    return run(xf, m, k, tokensPerExpert, pow2Scales);
  }

  /**
   * Quantises FP8 e4m3 input with its fp32 dequant scales: each element is first dequantised to bf16
   * ({@code bf16_rne(float(x) * inputScales[row][col / 128])}; negative scales are legal).
   *
   * @param x {@code [m, k]} e4m3 bits
   * @param inputScales {@code [m, ceil(k / 128)]} fp32
   */
  public static Result quantizeFp8(byte[] x, float[] inputScales, int m, int k, int[] tokensPerExpert,
      boolean pow2Scales) {
    String op = "FusedTransposeSplitQuant";
    check(op, m, k, tokensPerExpert);
    nonNull(op, "x", x);
    nonNull(op, "inputScales", inputScales);
    length(op, "x", x.length, (long) m * k, "[" + m + ", " + k + "]");
    int sc = OpChecks.ceilDiv(k, BLOCK);
    length(op, "inputScales", inputScales.length, (long) m * sc, "[" + m + ", " + sc + "]");
    float[] xf = new float[elements(op, "x", m, k)];
    for (int r = 0; r < m; r++) {
      for (int c = 0; c < k; c++) {
        float v = Fp8E4m3.decode(x[r * k + c]) * inputScales[r * sc + c / BLOCK];
        xf[r * k + c] = Bf16.round(v);
      }
    }
    return run(xf, m, k, tokensPerExpert, pow2Scales);
  }

  /** The quant scale of a block whose amax (over bf16 values) is {@code amax}; see the class doc. */
  static float quantScale(float amax, boolean pow2) {
    if (amax == 0f) {
      return 1f;
    }
    float s = E4M3_MAX / amax;
    if (s == Float.POSITIVE_INFINITY) {
      s = BF16_MAX;
    } else if (s == 0f) {
      return 0f;
    }
    if (pow2) {
      s = Math.scalb(1f, Math.getExponent(s));
    }
    return s;
  }

  private static Result run(float[] x, int m, int k, int[] tpe, boolean pow2) {
    int experts = tpe.length;
    byte[][] outs = new byte[experts][];
    float[][] scales = new float[experts][];
    int start = 0;
    for (int i = 0; i < experts; i++) {
      int n = tpe[i];
      byte[] out = new byte[elements("FusedTransposeSplitQuant", "outs[" + i + "]", k, n)];
      float[] sc = new float[elements("FusedTransposeSplitQuant", "scales[" + i + "]", n / BLOCK, k)];
      for (int b = 0; b < n / BLOCK; b++) {
        int row0 = start + b * BLOCK;
        for (int c = 0; c < k; c++) {
          float amax = 0f;
          for (int r = 0; r < BLOCK; r++) {
            float a = Math.abs(x[(row0 + r) * k + c]);
            if (a > amax) { // NaN compares false: ignored, as __hmax returns the non-NaN operand
              amax = a;
            }
          }
          float s = quantScale(amax, pow2);
          sc[b * k + c] = 1f / s;
          for (int r = 0; r < BLOCK; r++) {
            out[c * n + b * BLOCK + r] = Fp8E4m3.encodeSaturating(x[(row0 + r) * k + c] * s);
          }
        }
      }
      outs[i] = out;
      scales[i] = sc;
      start += n;
    }
    return new Result(k, tpe.clone(), outs, scales);
  }

  private static void check(String op, int m, int k, int[] tpe) {
    nonNegative(op, "m", m);
    OpChecks.inRange(op, "k", k, 0, MAX_K);
    nonNull(op, "tokensPerExpert", tpe);
    if (m % BLOCK != 0) {
      throw fail(op, "m (" + m + ") must be a multiple of " + BLOCK);
    }
    long sum = 0;
    for (int i = 0; i < tpe.length; i++) {
      if (tpe[i] < 0 || tpe[i] % BLOCK != 0) {
        throw fail(op, "tokensPerExpert[" + i + "] = " + tpe[i] + " must be a non-negative multiple of " + BLOCK);
      }
      sum += tpe[i];
    }
    if (sum != m) {
      throw fail(op, "tokensPerExpert sums to " + sum + ", expected m = " + m);
    }
  }
}
