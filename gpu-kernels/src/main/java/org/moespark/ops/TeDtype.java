package org.moespark.ops;

/**
 * Token element type of the GPU twins of the TransformerEngine permutation ops ({@link TePermuteGpu},
 * {@link TeMaskPermuteGpu}, {@link TeSortChunksGpu}): the CPU references tell it from the Java array
 * type ({@code float[]} / {@code short[]} of bf16 bits); device buffers are untyped, so the GPU API
 * takes it explicitly.
 */
public enum TeDtype {
  /** IEEE fp32, 4 bytes. */
  FP32(4, "fp32"),
  /** bfloat16 bit patterns, 2 bytes. */
  BF16(2, "bf16");

  /** Bytes per element. */
  public final int bytes;
  final String label;

  TeDtype(int bytes, String label) {
    this.bytes = bytes;
    this.label = label;
  }
}
