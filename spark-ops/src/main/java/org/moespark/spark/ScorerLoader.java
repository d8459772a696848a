package org.moespark.spark;

import java.nio.file.Path;

/**
 * Loads a {@link BatchScorer} from a local model directory. Chosen by class name with
 * {@value MoeConf#LOADER}; instantiated reflectively (public no-arg constructor) on the driver and on
 * every executor.
 */
public interface ScorerLoader {
  /**
   * A cheap check run on the driver while the query is planned, so that a bad model gives one error
   * instead of a failure in every task. Must not load the weights.
   *
   * @throws IllegalArgumentException naming what is wrong (file, key, expected vs got)
   */
  default void validate(Path modelDir, int layer) {
    ModelChecks.checkHfModelDir(modelDir, layer);
  }

  /**
   * Loads layer {@code layer} of the model in {@code modelDir}.
   *
   * @param options backend (always {@link MoeBackend#CPU} or {@link MoeBackend#GPU} here, never AUTO),
   *     GPU device ordinal, compute mode
   * @throws UnsupportedOperationException when the requested backend is not supported by this loader
   *     (with backend {@code auto} the operator then falls back to the CPU)
   */
  BatchScorer load(Path modelDir, int layer, Options options);

  /**
   * @param backend CPU or GPU
   * @param gpuDevice CUDA device ordinal (from the task's {@code gpu} resource), -1 for the CPU
   * @param compute {@code "fp32"} or {@code "bf16"}
   * @param gemm the GPU expert GEMMs' precision ({@code "bf16"}, {@code "fp8"}, {@code "mxfp4"}, {@code "nvfp4"}),
   *     or null for the executor's default
   */
  record Options(MoeBackend backend, int gpuDevice, String compute, String gemm) {
    /** The executor's default GEMM precision. */
    public Options(MoeBackend backend, int gpuDevice, String compute) {
      this(backend, gpuDevice, compute, null);
    }
  }
}
