package org.moespark.layer;

/**
 * A MoE router: the linear gate {@code logits = x·weightᵀ (+ bias)} and the way top-k experts and
 * their weights are chosen from the logits (models-and-formats §2.7).
 *
 * @param kind the family's routing rule
 * @param hidden H
 * @param experts E (routed experts)
 * @param topK k, in {@code [1, E]}
 * @param weight {@code [E, H]} router weight (fp32 values)
 * @param bias {@code [E]} router bias (GPT-OSS) or null
 * @param normTopK renormalise the k weights to sum 1 ({@link Kind#SOFTMAX_TOPK}: Mixtral always true,
 *     Qwen/OLMoE {@code norm_topk_prob}; {@link Kind#SIGMOID_GROUPED_TOPK}: DeepSeek {@code norm_topk_prob});
 *     ignored by {@link Kind#TOPK_SOFTMAX}
 * @param weightsInModelDtype cast the final routing weights to the model dtype (Qwen2/3-MoE, OLMoE,
 *     GPT-OSS: true; Mixtral v5 and DeepSeek-V3 keep fp32: false); only matters for {@link Compute#BF16}
 * @param correctionBias {@code [E]} DeepSeek {@code e_score_correction_bias} (selection only) or null
 * @param nGroup DeepSeek {@code n_group} (1 for the other kinds); must divide E
 * @param topkGroup DeepSeek {@code topk_group}, in {@code [1, nGroup]}
 * @param routedScalingFactor DeepSeek {@code routed_scaling_factor} (1 for the other kinds); finite
 */
public record RouterSpec(
    Kind kind,
    int hidden,
    int experts,
    int topK,
    float[] weight,
    float[] bias,
    boolean normTopK,
    boolean weightsInModelDtype,
    float[] correctionBias,
    int nGroup,
    int topkGroup,
    float routedScalingFactor) {

  /** Routing rules. */
  public enum Kind {
    /** {@code p = softmax(fp32 logits)}, top-k of p, optional renormalisation (Mixtral, Qwen2/3-MoE, OLMoE). */
    SOFTMAX_TOPK,
    /** Top-k of the logits, then softmax over the k (GPT-OSS; the router has a bias). */
    TOPK_SOFTMAX,
    /**
     * DeepSeek-V3 {@code noaux_tc}: fp32 router, {@code s = sigmoid(logits)}, selection on
     * {@code s + correctionBias} limited to the best {@code topkGroup} groups (group score = sum of the
     * group's top-2 biased scores), weights = unbiased {@code s} of the chosen, optionally
     * {@code / (Σ + 1e-20)}, times {@code routedScalingFactor}.
     */
    SIGMOID_GROUPED_TOPK
  }

  public RouterSpec {
    if (kind == null) {
      throw new IllegalArgumentException("router kind must not be null");
    }
    if (hidden <= 0) {
      throw new IllegalArgumentException("router hidden size must be > 0, got " + hidden);
    }
    if (experts <= 0) {
      throw new IllegalArgumentException("router experts must be > 0, got " + experts);
    }
    if (topK < 1 || topK > experts) {
      throw new IllegalArgumentException("router topK must be in [1, " + experts + "], got " + topK);
    }
    long n = (long) experts * hidden;
    if (weight == null || weight.length != n) {
      throw new IllegalArgumentException("router weight must be [" + experts + ", " + hidden + "] = " + n
          + " floats, got " + (weight == null ? "null" : weight.length));
    }
    if (bias != null && bias.length != experts) {
      throw new IllegalArgumentException("router bias must have " + experts + " floats, got " + bias.length);
    }
    if (correctionBias != null && correctionBias.length != experts) {
      throw new IllegalArgumentException("router correction bias must have " + experts + " floats, got "
          + correctionBias.length);
    }
    if (nGroup < 1 || experts % nGroup != 0) {
      throw new IllegalArgumentException("router n_group must be >= 1 and divide " + experts + " experts, got "
          + nGroup);
    }
    if (topkGroup < 1 || topkGroup > nGroup) {
      throw new IllegalArgumentException("router topk_group must be in [1, " + nGroup + "], got " + topkGroup);
    }
    if (kind == Kind.SIGMOID_GROUPED_TOPK && topK > topkGroup * (experts / nGroup)) {
      throw new IllegalArgumentException("router topK " + topK + " exceeds the " + topkGroup * (experts / nGroup)
          + " experts of the " + topkGroup + " kept groups");
    }
    if (kind != Kind.SIGMOID_GROUPED_TOPK && (nGroup != 1 || correctionBias != null)) {
      throw new IllegalArgumentException("n_group/correction bias apply to SIGMOID_GROUPED_TOPK only, got kind "
          + kind + " with n_group " + nGroup + (correctionBias != null ? " and a correction bias" : ""));
    }
    if (!Float.isFinite(routedScalingFactor)) {
      throw new IllegalArgumentException("routed scaling factor must be finite, got " + routedScalingFactor);
    }
  }

  /** Mixtral / Qwen2/3-MoE / OLMoE style router. */
  public static RouterSpec softmaxTopK(int hidden, int experts, int topK, float[] weight, boolean normTopK,
      boolean weightsInModelDtype) {
    return new RouterSpec(Kind.SOFTMAX_TOPK, hidden, experts, topK, weight, null, normTopK, weightsInModelDtype,
        null, 1, 1, 1f);
  }

  /** GPT-OSS router (linear with bias, top-k on logits, softmax over the k, model dtype). */
  public static RouterSpec topKSoftmax(int hidden, int experts, int topK, float[] weight, float[] bias) {
    return new RouterSpec(Kind.TOPK_SOFTMAX, hidden, experts, topK, weight, bias, false, true, null, 1, 1, 1f);
  }

  /** DeepSeek-V3 router. */
  public static RouterSpec sigmoidGroupedTopK(int hidden, int experts, int topK, float[] weight,
      float[] correctionBias, int nGroup, int topkGroup, boolean normTopK, float routedScalingFactor) {
    return new RouterSpec(Kind.SIGMOID_GROUPED_TOPK, hidden, experts, topK, weight, null, normTopK, false,
        correctionBias, nGroup, topkGroup, routedScalingFactor);
  }
}
