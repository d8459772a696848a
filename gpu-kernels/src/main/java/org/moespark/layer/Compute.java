package org.moespark.layer;

/** The arithmetic a {@link MoeLayer} uses. Accumulation inside every GEMM and dot product is fp32 in both. */
public enum Compute {
  /** Weights dequantized to fp32, activations fp32 throughout (transformers with {@code torch_dtype=float32}). */
  FP32,
  /**
   * Weights rounded to bf16 at load and activations rounded to bf16 (round-to-nearest-even) at every
   * point where transformers' eager forward of a bf16 model produces a bf16 tensor: after each GEMM,
   * after each element-wise op, and in the final {@code index_add_} accumulation. Routing
   * probabilities stay fp32 where the model computes them in fp32 (§2.7 of models-and-formats.md).
   */
  BF16
}
