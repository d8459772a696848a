package org.moespark.layer;

/** Where a {@link MoeLayer} runs. */
public enum Backend {
  /** The exact pure-Java backend (netlib BLAS for the GEMMs). */
  CPU,
  /** The CUDA backend (not implemented yet: selecting it fails with the reason). */
  GPU,
  /** The GPU when it is implemented and available, else the CPU. Today: always the CPU. */
  AUTO
}
