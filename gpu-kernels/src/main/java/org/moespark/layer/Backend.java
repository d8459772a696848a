package org.moespark.layer;

/** Where a {@link MoeLayer} runs. */
public enum Backend {
  /** The exact pure-Java backend (netlib BLAS for the GEMMs). */
  CPU,
  /** The CUDA backend ({@link MoeLayerGpu}); selecting it where no GPU is usable fails with the reason. */
  GPU,
  /** The GPU when the native library is loaded and a device is usable, else the CPU (reason logged once). */
  AUTO
}
