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
 *   <li>{@link #MXFP4}, {@link #NVFP4}: FP4 weights (E2M1 codes with E8M0 scales per 32, or E4M3 scales per 16
 *       and an fp32 scale per expert matrix, ModelOpt's rule) quantized on the device at upload and kept
 *       resident (about a quarter of bf16's bytes), dequantized inside the GEMM ({@link GroupedGemmFp4}:
 *       the H100 has no FP4 tensor cores, the products run in bf16); activations bf16. Quantizing weights
 *       that came from an MXFP4 checkpoint (GPT-OSS) gives back the checkpoint's values exactly (bf16 holds
 *       them, and the E8M0 floor rule re-derives a grid that holds every element). Hopper only; needs
 *       {@code hidden} to be a multiple of 32.
 * </ul>
 *
 * Chosen per layer ({@link MoeLayerGpu#create(MoeBlockSpec, Compute, GemmPrecision)}) or process-wide by
 * the system property {@value #PROPERTY} ({@code bf16}, {@code fp8}, {@code mxfp4} or {@code nvfp4}).
 */
public enum GemmPrecision {
  /** bf16 operands, fp32 accumulation. */
  BF16,
  /** e4m3 operands with 1×128 activation and 128×128 weight block scales, fp32 accumulation. */
  FP8,
  /** MXFP4 weights (E8M0 scales per 32) dequantized inside the GEMM, bf16 activations, fp32 accumulation. */
  MXFP4,
  /** NVFP4 weights (E4M3 scales per 16, an fp32 scale per matrix) dequantized inside the GEMM, bf16 activations. */
  NVFP4;

  /** Whether the weights are FP4 ({@link #MXFP4} or {@link #NVFP4}). */
  public boolean fp4() {
    return this == MXFP4 || this == NVFP4;
  }

  /** JVM system property with the default precision: {@code bf16} (default), {@code fp8}, {@code mxfp4}, {@code nvfp4}. */
  public static final String PROPERTY = "moespark.gpu.gemm";

  /** {@code bf16}, {@code fp8}, {@code mxfp4} or {@code nvfp4} (case-insensitive). */
  public static GemmPrecision parse(String s) {
    return parse(s, PROPERTY);
  }

  /**
   * As {@link #parse(String)}; a bad value's message names it as {@code what} (the option or conf key it came
   * from): {@code "<what> must be bf16, fp8, mxfp4 or nvfp4, got '<s>'"}.
   */
  public static GemmPrecision parse(String s, String what) {
    if (s != null) {
      String v = s.trim().toLowerCase(Locale.ROOT);
      for (GemmPrecision p : values()) {
        if (p.label().equals(v)) {
          return p;
        }
      }
    }
    String[] n = names();
    String choices = String.join(", ", java.util.Arrays.copyOf(n, n.length - 1)) + " or " + n[n.length - 1];
    throw new IllegalArgumentException(what + " must be " + choices + ", got " + (s == null ? "null" : "'" + s + "'"));
  }

  /** The lower-case name of this precision, as options and confs spell it ({@code bf16}, {@code mxfp4}, ...). */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Every precision's {@link #label()}, in declaration order. */
  public static String[] names() {
    return java.util.Arrays.stream(values()).map(GemmPrecision::label).toArray(String[]::new);
  }

  /** The precision named by {@value #PROPERTY} (BF16 when unset). */
  public static GemmPrecision fromProperty() {
    return parse(System.getProperty(PROPERTY, "bf16"));
  }
}
