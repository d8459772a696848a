package org.moespark.layer;

import java.util.Objects;

/**
 * How a {@link MoeLayer} is loaded and run.
 *
 * @param backend where it runs ({@link Backend#AUTO}: the GPU where usable, else the CPU)
 * @param compute fp32 or bf16 arithmetic
 * @param gemm the GPU expert GEMMs' operand precision; null = the process default
 *     ({@link GemmPrecision#fromProperty()}); the CPU backend does not use it
 */
public record LayerOptions(Backend backend, Compute compute, GemmPrecision gemm) {
  public LayerOptions {
    Objects.requireNonNull(backend, "backend");
    Objects.requireNonNull(compute, "compute");
  }

  /** The process default GEMM precision. */
  public LayerOptions(Backend backend, Compute compute) {
    this(backend, compute, null);
  }

  /** {@link Backend#AUTO}, {@link Compute#FP32}. */
  public static LayerOptions defaults() {
    return new LayerOptions(Backend.AUTO, Compute.FP32);
  }

  public LayerOptions withBackend(Backend b) {
    return new LayerOptions(b, compute, gemm);
  }

  public LayerOptions withCompute(Compute c) {
    return new LayerOptions(backend, c, gemm);
  }

  public LayerOptions withGemm(GemmPrecision g) {
    return new LayerOptions(backend, compute, g);
  }

  /** {@link #gemm}, or the process default when unset. */
  public GemmPrecision gemmOrDefault() {
    return gemm != null ? gemm : GemmPrecision.fromProperty();
  }
}
