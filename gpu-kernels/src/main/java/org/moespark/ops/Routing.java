package org.moespark.ops;

import static org.moespark.ops.OpChecks.elements;
import static org.moespark.ops.OpChecks.fail;
import static org.moespark.ops.OpChecks.length;
import static org.moespark.ops.OpChecks.nonNegative;
import static org.moespark.ops.OpChecks.nonNull;
import static org.moespark.ops.OpChecks.positive;

import java.util.Arrays;

/**
 * MoE routers of the public model families (models-and-formats.md §2.7, moe-ops-semantics.md §13,
 * §14): the gate projection and the score / top-k / renormalisation variants. Pure Java, fp32
 * throughout; this is both the reference and the CPU backend.
 *
 * <p>Conventions shared by every method:
 *
 * <ul>
 *   <li>Tensors are row-major {@code float[]}: logits {@code [T, E]}, result ids and weights
 *       {@code [T, K]}.
 *   <li>Top-k order: value descending, and on equal values the <b>lower expert index wins</b>
 *       (moe-ops-semantics.md §1.5: Paddle/FastDeploy, cub ArgMax, TE radix top-k). Slot {@code j}
 *       of a token holds its {@code j}-th best expert, so the ids of a row are sorted by selection
 *       score, never duplicated.
 *   <li>Softmax is {@code exp(x - max) * (1 / sum)} with the sum accumulated in fp32 in ascending
 *       expert order (the Paddle/FastDeploy formulation, §15b); {@code exp} is
 *       {@code (float) Math.exp(double)} and sigmoid {@code (float) (1 / (1 + Math.exp(-x)))}, so
 *       probabilities can differ from CUDA {@code expf} or torch by a few ulp: compare weights with
 *       a tolerance, ids exactly (except at near-ties).
 *   <li>NaN logits are rejected (their rank would be undefined). Softmax variants also reject
 *       {@code +inf} and rows whose selected logits are all {@code -inf}; {@code -inf} is otherwise
 *       allowed as a mask (probability 0).
 * </ul>
 */
public final class Routing {
  private Routing() {}

  /**
   * The routing decision of {@code tokens} tokens: expert ids and combine weights, row-major
   * {@code [tokens, topK]}. Slot order is the selection order (best first).
   *
   * @param tokens number of tokens T
   * @param topK experts per token K
   * @param ids {@code [T*K]} expert ids in {@code [0, E)}, no duplicates within a row
   * @param weights {@code [T*K]} fp32 weight of each slot (what multiplies the expert's output)
   */
  public record Result(int tokens, int topK, int[] ids, float[] weights) {
    public Result {
      nonNegative("Routing.Result", "tokens", tokens);
      positive("Routing.Result", "topK", topK);
      nonNull("Routing.Result", "ids", ids);
      nonNull("Routing.Result", "weights", weights);
      length("Routing.Result", "ids", ids.length, (long) tokens * topK, "[" + tokens + ", " + topK + "]");
      length("Routing.Result", "weights", weights.length, (long) tokens * topK,
          "[" + tokens + ", " + topK + "]");
    }

    /** Expert id of slot {@code slot} of token {@code token}. */
    public int id(int token, int slot) {
      return ids[token * topK + slot];
    }

    /** Weight of slot {@code slot} of token {@code token}. */
    public float weight(int token, int slot) {
      return weights[token * topK + slot];
    }
  }

  /**
   * Router logits {@code hidden · gateWeightᵀ + gateBias} in fp32.
   *
   * <p>Summation order (so a CUDA twin can be bit-identical): for each (token, expert),
   * {@code acc = 0f; for h = 0..H-1: acc = acc + hidden[t,h] * gateWeight[e,h]} with the product
   * and the sum each rounded to fp32 (no FMA), then {@code acc + gateBias[e]} if a bias is given.
   * HF computes the same dot product with a BLAS whose order is unspecified, so compare with HF by
   * tolerance.
   *
   * @param hidden {@code [tokens, hiddenSize]} row-major activations
   * @param tokens number of tokens T (0 allowed)
   * @param hiddenSize hidden width H (≥ 1)
   * @param gateWeight {@code [experts, hiddenSize]} row-major (the HF {@code nn.Linear} weight)
   * @param gateBias {@code [experts]} or {@code null} (GPT-OSS routers have one)
   * @param experts number of experts E (≥ 1)
   * @return {@code [tokens, experts]} row-major fp32 logits
   */
  public static float[] logits(float[] hidden, int tokens, int hiddenSize, float[] gateWeight,
      float[] gateBias, int experts) {
    String op = "Routing.logits";
    nonNegative(op, "tokens", tokens);
    positive(op, "hiddenSize", hiddenSize);
    positive(op, "experts", experts);
    nonNull(op, "hidden", hidden);
    nonNull(op, "gateWeight", gateWeight);
    length(op, "hidden", hidden.length, (long) tokens * hiddenSize, "[" + tokens + ", " + hiddenSize + "]");
    length(op, "gateWeight", gateWeight.length, (long) experts * hiddenSize,
        "[" + experts + ", " + hiddenSize + "]");
    if (gateBias != null) {
      length(op, "gateBias", gateBias.length, experts, "[" + experts + "]");
    }
    float[] out = new float[elements(op, "logits [tokens, experts]", tokens, experts)];
    for (int t = 0; t < tokens; t++) {
      int xo = t * hiddenSize;
      for (int e = 0; e < experts; e++) {
        int wo = e * hiddenSize;
        float acc = 0f;
        for (int h = 0; h < hiddenSize; h++) {
          float p = hidden[xo + h] * gateWeight[wo + h];
          acc = acc + p;
        }
        if (gateBias != null) {
          acc = acc + gateBias[e];
        }
        out[t * experts + e] = acc;
      }
    }
    return out;
  }

  /**
   * Softmax over all experts, then top-k of the probabilities, optionally renormalised: the
   * Mixtral ({@code renormalize = true}), Qwen2-MoE / Qwen3-MoE / OLMoE ({@code renormalize =
   * norm_topk_prob}) router, and TE's {@code use_pre_softmax} softmax router.
   *
   * <p>{@code p = softmax(logits)} over E in fp32; ids = top-k of p; weights = the selected p, or
   * with {@code renormalize} {@code w_j / Σ w} (division, Σ in fp32 in slot order — HF's
   * {@code w /= w.sum(-1)}). HF then casts the weights to the model dtype for Qwen/OLMoE (Mixtral
   * v5 keeps fp32); that cast is the caller's job.
   *
   * @param logits {@code [tokens, experts]} fp32
   * @return ids and weights {@code [tokens, topK]}
   */
  public static Result softmaxTopK(float[] logits, int tokens, int experts, int topK, boolean renormalize) {
    String op = "Routing.softmaxTopK";
    checkLogits(op, logits, tokens, experts, topK);
    int[] ids = new int[elements(op, "ids [tokens, topK]", tokens, topK)];
    float[] w = new float[ids.length];
    float[] p = new float[experts];
    for (int t = 0; t < tokens; t++) {
      int base = t * experts;
      requireSoftmaxable(op, logits, base, experts, t);
      softmax(logits, base, experts, p, 0);
      topK(p, 0, experts, topK, ids, t * topK);
      float sum = 0f;
      for (int j = 0; j < topK; j++) {
        w[t * topK + j] = p[ids[t * topK + j]];
        sum += w[t * topK + j];
      }
      if (renormalize) {
        for (int j = 0; j < topK; j++) {
          w[t * topK + j] = w[t * topK + j] / sum;
        }
      }
    }
    return new Result(tokens, topK, ids, w);
  }

  /**
   * Top-k on the raw logits, then softmax over the k selected values: the GPT-OSS router
   * ({@code GptOssTopKRouter}; TE's softmax router without pre-softmax). The weights sum to 1
   * (up to rounding). HF computes this softmax in the router dtype (bf16 for a bf16 model); this
   * method computes it in fp32 and leaves any cast to the caller.
   *
   * @param logits {@code [tokens, experts]} fp32 (router bias already added)
   * @return ids and weights {@code [tokens, topK]}
   */
  public static Result topKSoftmax(float[] logits, int tokens, int experts, int topK) {
    String op = "Routing.topKSoftmax";
    checkLogits(op, logits, tokens, experts, topK);
    int[] ids = new int[elements(op, "ids [tokens, topK]", tokens, topK)];
    float[] w = new float[ids.length];
    float[] v = new float[topK];
    for (int t = 0; t < tokens; t++) {
      int base = t * experts;
      for (int e = 0; e < experts; e++) {
        if (logits[base + e] == Float.POSITIVE_INFINITY) {
          throw fail(op, "logits[" + t + ", " + e + "] is +inf; softmax needs finite or -inf logits");
        }
      }
      topK(logits, base, experts, topK, ids, t * topK);
      for (int j = 0; j < topK; j++) {
        v[j] = logits[base + ids[t * topK + j]];
      }
      if (v[0] == Float.NEGATIVE_INFINITY) {
        throw fail(op, "token " + t + ": all " + topK + " selected logits are -inf; softmax is undefined");
      }
      softmax(v, 0, topK, w, t * topK);
    }
    return new Result(tokens, topK, ids, w);
  }

  /** How experts of the groups that were not kept are masked before the final top-k. */
  public enum GroupMask {
    /**
     * Masked experts get {@code -inf}: they can never be selected. The DeepSeek reference code
     * ({@code inference/model.py::Gate}) and TE's fused router do this; it is the intended
     * group-limited routing and the default.
     */
    NEG_INF,
    /**
     * Masked experts get {@code 0.0} ({@code masked_fill(~mask, 0.0)}, HF
     * {@code DeepseekV3TopkRouter}). Differs from {@link #NEG_INF} only when fewer than K experts
     * of the kept groups have a biased score above 0: then a masked expert (score 0, lowest index
     * first) can beat a kept one. Use this to match transformers bit-for-bit in that corner.
     */
    ZERO
  }

  /**
   * Sigmoid scores with group-limited top-k and a selection-only correction bias: the DeepSeek-V3 /
   * R1 / Kimi-K2 router ({@code noaux_tc}; HF {@code DeepseekV3TopkRouter}), with groups masked by
   * {@link GroupMask#NEG_INF}. See {@link #sigmoidGroupedTopK(float[], int, int, int, float[], int,
   * int, boolean, float, GroupMask)}.
   */
  public static Result sigmoidGroupedTopK(float[] logits, int tokens, int experts, int topK,
      float[] correctionBias, int nGroup, int topkGroup, boolean renormalize, float routedScalingFactor) {
    return sigmoidGroupedTopK(logits, tokens, experts, topK, correctionBias, nGroup, topkGroup, renormalize,
        routedScalingFactor, GroupMask.NEG_INF);
  }

  /**
   * Sigmoid scores with group-limited top-k and a selection-only correction bias (DeepSeek-V3).
   *
   * <pre>
   * s = sigmoid(logits)                      fp32, [T, E]
   * c = s + correctionBias (or s)            selection scores only
   * group g = experts [g*G, (g+1)*G), G = E / nGroup
   * groupScore[g] = sum of the top min(2, G) values of c in g (fp32, larger first)
   * keep the topkGroup best groups (ties: lower group index); mask the others' c (see mask)
   * ids = top-k of the masked c
   * w = s[ids]                               the UNBIASED scores
   * if renormalize: w = w / (Σ w + 1e-20)    Σ in fp32 in slot order (HF; applied for any K)
   * w = w * routedScalingFactor
   * </pre>
   *
   * Differences from neighbours: TE's fused router skips the renormalisation when K = 1 (HF does
   * not; with K = 1 HF's weight is 1·scale); the DeepSeek reference code scores groups by their max
   * when there is no bias (HF always uses the top-2 sum, as here). With {@code nGroup = 1} the group
   * step is a no-op (Kimi K2). HF's top-k is unsorted; here slots are sorted by {@code c}.
   *
   * @param logits {@code [tokens, experts]} fp32 router logits
   * @param correctionBias {@code [experts]} {@code e_score_correction_bias}, or {@code null}
   * @param nGroup number of expert groups; must divide {@code experts}
   * @param topkGroup groups kept per token, in {@code [1, nGroup]}
   * @param routedScalingFactor finite multiplier applied to every weight (2.5 for DeepSeek-V3)
   * @param mask how experts of dropped groups are masked
   */
  public static Result sigmoidGroupedTopK(float[] logits, int tokens, int experts, int topK,
      float[] correctionBias, int nGroup, int topkGroup, boolean renormalize, float routedScalingFactor,
      GroupMask mask) {
    String op = "Routing.sigmoidGroupedTopK";
    checkLogits(op, logits, tokens, experts, topK);
    nonNull(op, "mask", mask);
    positive(op, "nGroup", nGroup);
    if (experts % nGroup != 0) {
      throw fail(op, "experts (" + experts + ") must be a multiple of nGroup (" + nGroup + ")");
    }
    OpChecks.inRange(op, "topkGroup", topkGroup, 1, nGroup);
    int groupSize = experts / nGroup;
    if (mask == GroupMask.NEG_INF && (long) topkGroup * groupSize < topK) {
      throw fail(op, "topK (" + topK + ") exceeds the experts of the kept groups (topkGroup " + topkGroup
          + " x group size " + groupSize + ")");
    }
    if (!Float.isFinite(routedScalingFactor)) {
      throw fail(op, "routedScalingFactor must be finite, got " + routedScalingFactor);
    }
    if (correctionBias != null) {
      length(op, "correctionBias", correctionBias.length, experts, "[" + experts + "]");
      for (int e = 0; e < experts; e++) {
        if (!Float.isFinite(correctionBias[e])) {
          throw fail(op, "correctionBias[" + e + "] must be finite, got " + correctionBias[e]);
        }
      }
    }
    int[] ids = new int[elements(op, "ids [tokens, topK]", tokens, topK)];
    float[] w = new float[ids.length];
    float[] s = new float[experts];
    float[] c = new float[experts];
    float[] groupScore = new float[nGroup];
    int[] top2 = new int[2];
    int[] keptGroups = new int[topkGroup];
    boolean[] kept = new boolean[nGroup];
    int perGroup = Math.min(2, groupSize);
    float maskValue = mask == GroupMask.NEG_INF ? Float.NEGATIVE_INFINITY : 0f;
    for (int t = 0; t < tokens; t++) {
      int base = t * experts;
      for (int e = 0; e < experts; e++) {
        s[e] = sigmoid(logits[base + e]);
        c[e] = correctionBias == null ? s[e] : s[e] + correctionBias[e];
      }
      if (nGroup > 1) {
        for (int g = 0; g < nGroup; g++) {
          topK(c, g * groupSize, groupSize, perGroup, top2, 0);
          float sum = 0f;
          for (int j = 0; j < perGroup; j++) {
            sum += c[g * groupSize + top2[j]];
          }
          groupScore[g] = sum;
        }
        topK(groupScore, 0, nGroup, topkGroup, keptGroups, 0);
        Arrays.fill(kept, false);
        for (int g : keptGroups) {
          kept[g] = true;
        }
        for (int e = 0; e < experts; e++) {
          if (!kept[e / groupSize]) {
            c[e] = maskValue;
          }
        }
      }
      topK(c, 0, experts, topK, ids, t * topK);
      float sum = 0f;
      for (int j = 0; j < topK; j++) {
        w[t * topK + j] = s[ids[t * topK + j]];
        sum += w[t * topK + j];
      }
      float denom = sum + 1e-20f;
      for (int j = 0; j < topK; j++) {
        float v = w[t * topK + j];
        if (renormalize) {
          v = v / denom;
        }
        w[t * topK + j] = v * routedScalingFactor;
      }
    }
    return new Result(tokens, topK, ids, w);
  }

  // ---------------------------------------------------------------------------------------------
  // Shared numeric helpers (package-private: MoeDispatch uses the same softmax and top-k).

  /** fp32 sigmoid: {@code (float) (1 / (1 + exp(-x)))}, computed in double and rounded once. */
  static float sigmoid(float x) {
    return (float) (1.0 / (1.0 + Math.exp(-(double) x)));
  }

  /**
   * Softmax of {@code x[off .. off+n)} into {@code out[outOff ..)}: {@code m = max};
   * {@code e_i = (float) exp(x_i - m)} (difference in fp32); {@code sum} in fp32 ascending;
   * {@code p_i = e_i * (1f / sum)}. The caller guarantees no NaN/+inf and a finite max.
   */
  static void softmax(float[] x, int off, int n, float[] out, int outOff) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      max = Math.max(max, x[off + i]);
    }
    float sum = 0f;
    for (int i = 0; i < n; i++) {
      float e = (float) Math.exp(x[off + i] - max);
      out[outOff + i] = e;
      sum += e;
    }
    float inv = 1f / sum;
    for (int i = 0; i < n; i++) {
      out[outOff + i] = out[outOff + i] * inv;
    }
  }

  /**
   * Indices (relative to {@code off}) of the {@code k} largest of {@code v[off .. off+n)} into
   * {@code out[outOff .. outOff+k)}, best first; equal values: lower index first. No NaN allowed
   * (checked by the callers). O(n·k), which is what k ≤ 16 and n ≤ 512 need.
   */
  static void topK(float[] v, int off, int n, int k, int[] out, int outOff) {
    long taken0 = 0L;
    boolean[] taken = n > 64 ? new boolean[n] : null;
    for (int j = 0; j < k; j++) {
      int best = -1;
      float bestV = 0f;
      for (int i = 0; i < n; i++) {
        boolean isTaken = taken != null ? taken[i] : (taken0 & (1L << i)) != 0;
        if (isTaken) {
          continue;
        }
        float x = v[off + i];
        if (best < 0 || x > bestV) {
          best = i;
          bestV = x;
        }
      }
      out[outOff + j] = best;
      if (taken != null) {
        taken[best] = true;
      } else {
        taken0 |= 1L << best;
      }
    }
  }

  private static void checkLogits(String op, float[] logits, int tokens, int experts, int topK) {
    nonNegative(op, "tokens", tokens);
    positive(op, "experts", experts);
    OpChecks.inRange(op, "topK", topK, 1, experts);
    nonNull(op, "logits", logits);
    length(op, "logits", logits.length, (long) tokens * experts, "[" + tokens + ", " + experts + "]");
    for (int i = 0; i < logits.length; i++) {
      if (Float.isNaN(logits[i])) {
        throw fail(op, "logits[" + (i / experts) + ", " + (i % experts) + "] is NaN");
      }
    }
  }

  private static void requireSoftmaxable(String op, float[] x, int off, int n, int token) {
    boolean anyFinite = false;
    for (int i = 0; i < n; i++) {
      float v = x[off + i];
      if (v == Float.POSITIVE_INFINITY) {
        throw fail(op, "logits[" + token + ", " + i + "] is +inf; softmax needs finite or -inf logits");
      }
      anyFinite |= v != Float.NEGATIVE_INFINITY;
    }
    if (!anyFinite) {
      throw fail(op, "token " + token + ": all " + n + " logits are -inf; softmax is undefined");
    }
  }
}
