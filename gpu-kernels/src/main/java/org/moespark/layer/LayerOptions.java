package org.moespark.layer;

import java.util.Objects;

/**
 * How a {@link MoeLayer} is loaded and run.
 *
 * @param backend where it runs ({@link Backend#AUTO} picks the CPU today)
 * @param compute fp32 or bf16 arithmetic
 */
public record LayerOptions(Backend backend, Compute compute) {
  public LayerOptions {
    Objects.requireNonNull(backend, "backend");
    Objects.requireNonNull(compute, "compute");
  }

  /** {@link Backend#AUTO}, {@link Compute#FP32}. */
  public static LayerOptions defaults() {
    return new LayerOptions(Backend.AUTO, Compute.FP32);
  }

  public LayerOptions withBackend(Backend b) {
    return new LayerOptions(b, compute);
  }

  public LayerOptions withCompute(Compute c) {
    return new LayerOptions(backend, c);
  }
}
