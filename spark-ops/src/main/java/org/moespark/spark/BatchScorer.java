package org.moespark.spark;

/**
 * What the Spark operator needs from a loaded MoE layer: score a batch of rows.
 *
 * <p>Implementations are shared by every task of an executor JVM (see {@link ModelCache}) and must be
 * thread-safe. The real implementation wraps {@code org.moespark.layer.MoeLayer}; tests plug in their own
 * through {@link ScorerLoader}.
 */
public interface BatchScorer {
  /** Width of one input row and of one output row (the model's {@code hidden_size}). */
  int hiddenSize();

  /** Experts chosen per row ({@code num_experts_per_tok}). */
  int topK();

  /** Where {@link #score} runs: {@code "cpu"} or {@code "gpu"} (reported in the SQL metrics). */
  String backend();

  /**
   * Runs the layer on {@code rows} rows.
   *
   * @param x row-major {@code [rows, hiddenSize()]} fp32; not modified
   * @param rows number of rows, {@code >= 0}
   * @return outputs {@code [rows, hiddenSize()]} and routing {@code [rows, topK()]}
   */
  Scores score(float[] x, int rows);

  /**
   * The device-resident layer behind this scorer when it runs on a GPU, else null (the default). With a
   * device layer the operator skips {@link #score}: it packs the column vectors straight into pinned
   * staging ({@code org.moespark.layer.PinnedStaging}) and runs {@code MoeLayerGpu.forwardDevice}, routing
   * on the device, with copies overlapped with compute.
   */
  default org.moespark.layer.MoeLayerGpu deviceLayer() {
    return null;
  }

  /**
   * Whether the operator runs this scorer through {@link Staging} (pack the column vectors into a slot,
   * compute, unpack from the slot) instead of {@link #score} on arrays: by default when it has a
   * {@link #deviceLayer}.
   */
  default boolean staged() {
    return deviceLayer() != null;
  }

  /**
   * A new staging of {@code capacity} rows per slot for a {@link #staged} scorer (the operator pools them per
   * executor): by default {@code PinnedStaging} on the device layer.
   */
  default Staging newStaging(int capacity) {
    org.moespark.layer.MoeLayerGpu l = deviceLayer();
    if (l == null) {
      throw new UnsupportedOperationException("scorer on " + backend() + " has no staging (staged() is false)");
    }
    return Staging.of(org.moespark.layer.PinnedStaging.create(l, capacity));
  }

  /**
   * One batch's results plus where the time went. {@code y [rows, hidden]}, {@code topkIds [rows, topK]},
   * {@code topkWeights [rows, topK]}, row-major. Times in nanoseconds; a CPU scorer reports all its time
   * as compute.
   */
  record Scores(int rows, int hidden, int topK, float[] y, int[] topkIds, float[] topkWeights,
      long hostToDeviceNanos, long computeNanos, long deviceToHostNanos) {
    public Scores {
      if (y == null || topkIds == null || topkWeights == null) {
        throw new IllegalArgumentException("Scores: y, topkIds and topkWeights must not be null");
      }
      if (y.length != (long) rows * hidden) {
        throw new IllegalArgumentException("Scores: y must be [rows=" + rows + ", hidden=" + hidden + "] = "
            + (long) rows * hidden + " floats, got " + y.length);
      }
      if (topkIds.length != (long) rows * topK || topkWeights.length != (long) rows * topK) {
        throw new IllegalArgumentException("Scores: topkIds/topkWeights must be [rows=" + rows + ", topK=" + topK
            + "] = " + (long) rows * topK + ", got " + topkIds.length + "/" + topkWeights.length);
      }
    }
  }
}
