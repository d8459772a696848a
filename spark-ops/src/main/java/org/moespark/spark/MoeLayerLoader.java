package org.moespark.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Locale;
import org.moespark.cuda.Cuda;
import org.moespark.layer.Backend;
import org.moespark.layer.Compute;
import org.moespark.layer.GemmPrecision;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.model.Checkpoint;
import org.moespark.model.MoeConfig;

/**
 * The default {@link ScorerLoader}: a Hugging Face MoE checkpoint run by {@link MoeLayer} (gpu-kernels).
 *
 * <p>{@link #validate} (driver, at planning time) parses {@code config.json} with {@link MoeConfig}, checks
 * that {@code layer} is an MoE layer of that family, and opens the checkpoint's safetensors headers (or
 * index) without reading any weight. {@link #load} (executors, once per JVM through {@link ModelCache})
 * loads the layer with {@link LayerOptions}: backend {@link Backend#CPU} or {@link Backend#GPU} (never AUTO:
 * the auto fallback is decided by {@link ModelCache}, which turns the layer's
 * {@link UnsupportedOperationException} for GPU into a logged CPU fallback), compute fp32 or bf16.
 */
public final class MoeLayerLoader implements ScorerLoader {
  @Override
  public void validate(Path modelDir, int layer) {
    ModelChecks.checkHfModelDir(modelDir, layer);
    MoeConfig cfg;
    try {
      cfg = MoeConfig.load(modelDir);
    } catch (IOException e) {
      throw new UncheckedIOException("model " + modelDir + ": cannot read config.json: " + e.getMessage(), e);
    }
    cfg.requireMoeLayer(layer);
    try (Checkpoint ignored = Checkpoint.open(modelDir)) {
      // headers (or the index) parse; the weights are read on the executors
    } catch (IOException e) {
      throw new UncheckedIOException("model " + modelDir + ": cannot open the checkpoint: " + e.getMessage(), e);
    }
  }

  @Override
  public BatchScorer load(Path modelDir, int layer, Options options) {
    if (options == null) {
      throw new IllegalArgumentException("options must not be null");
    }
    Compute compute = switch (options.compute().toLowerCase(Locale.ROOT)) {
      case "fp32" -> Compute.FP32;
      case "bf16" -> Compute.BF16;
      default -> throw new IllegalArgumentException(MoeConf.COMPUTE + " must be fp32 or bf16, got '"
          + options.compute() + "'");
    };
    Backend backend = switch (options.backend()) {
      case CPU -> Backend.CPU;
      case GPU -> Backend.GPU;
      case AUTO -> throw new IllegalArgumentException("MoeLayerLoader.load: backend must be CPU or GPU (AUTO is "
          + "resolved by ModelCache), got AUTO");
    };
    int device = options.gpuDevice();
    if (backend == Backend.GPU) {
      int count = Cuda.deviceCount();
      if (device < 0 || device >= count) {
        throw new UnsupportedOperationException("GPU " + device + " (the task's gpu resource address) is not one of "
            + "the " + count + " visible CUDA devices");
      }
      Cuda.setDevice(device);
    }
    GemmPrecision gemm = options.gemm() == null ? null : GemmPrecision.parse(options.gemm());
    MoeLayer l = MoeLayer.load(modelDir, layer, new LayerOptions(backend, compute, gemm));
    return new LayerScorer(l, device);
  }

  /** {@link MoeLayer} as a {@link BatchScorer}; all of its time is reported as compute. */
  static final class LayerScorer implements BatchScorer {
    private final MoeLayer layer;
    private final int device;
    private final boolean gpu;

    LayerScorer(MoeLayer layer, int device) {
      this.layer = layer;
      this.device = device;
      this.gpu = "gpu".equals(layer.backend());
    }

    /** The wrapped layer. */
    MoeLayer layer() {
      return layer;
    }

    @Override
    public int hiddenSize() {
      return layer.hiddenSize();
    }

    @Override
    public int topK() {
      return layer.topK();
    }

    @Override
    public String backend() {
      return layer.backend();
    }

    @Override
    public org.moespark.layer.MoeLayerGpu deviceLayer() {
      return gpu ? layer.gpu() : null;
    }

    @Override
    public Scores score(float[] x, int rows) {
      if (gpu) {
        Cuda.setDevice(device); // the CUDA current device is per thread; Spark runs tasks on pooled threads
      }
      long t0 = System.nanoTime();
      MoeLayer.Output o = layer.forward(x, rows);
      long dt = System.nanoTime() - t0;
      return new Scores(o.tokens(), o.hidden(), o.topK(), o.y(), o.topkIds(), o.topkWeights(), 0L, dt, 0L);
    }
  }
}
