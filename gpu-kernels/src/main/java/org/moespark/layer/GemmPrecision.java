package org.moespark.layer;

import java.util.Locale;

/**
 * Operand precision of the GPU layer's expert GEMMs ({@link MoeLayerGpu}). The router GEMM stays bf16
 * either way.
 *
 * <ul>
 *   <li>{@link #BF16} (the default): weights rounded to bf16 at upload, activations rounded to bf16,
 *       {@link GroupedGemm};
 *   <li>{@link #FP8}: DeepSeek-V3-style block FP8 — weights quantized to e4m3 with 128×128 block scales at
 *       upload, activations quantized to e4m3 with 1×128 scales on the device before each GEMM
 *       ({@link org.moespark.formats.ActQuantGpu}, DeepSeek's {@code act_quant} rule), {@link GroupedGemmFp8}
 *       (Hopper only). Needs {@code hidden} to be a multiple of 16.
 * </ul>
 *
 * Chosen per layer ({@link MoeLayerGpu#create(MoeBlockSpec, Compute, GemmPrecision)}) or process-wide by
 * the system property {@value #PROPERTY} ({@code bf16} or {@code fp8}).
 */
public enum GemmPrecision {
  /** bf16 operands, fp32 accumulation. */
  BF16,
  /** e4m3 operands with 1×128 activation and 128×128 weight block scales, fp32 accumulation. */
  FP8;

  /** JVM system property with the default precision: {@code bf16} (default) or {@code fp8}. */
  public static final String PROPERTY = "moespark.gpu.gemm";

  /** {@code bf16} or {@code fp8} (case-insensitive). */
  public static GemmPrecision parse(String s) {
    if (s != null) {
      switch (s.trim().toLowerCase(Locale.ROOT)) {
        case "bf16":
          return BF16;
        case "fp8":
          return FP8;
        default:
          break;
      }
    }
    throw new IllegalArgumentException(PROPERTY + " must be bf16 or fp8, got " + (s == null ? "null" : "'" + s + "'"));
  }

  /** The precision named by {@value #PROPERTY} (BF16 when unset). */
  public static GemmPrecision fromProperty() {
    return parse(System.getProperty(PROPERTY, "bf16"));
  }
}
