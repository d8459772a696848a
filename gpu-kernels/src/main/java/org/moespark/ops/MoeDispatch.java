package org.moespark.ops;

import static org.moespark.ops.OpChecks.elements;
import static org.moespark.ops.OpChecks.fail;
import static org.moespark.ops.OpChecks.length;
import static org.moespark.ops.OpChecks.nonNegative;
import static org.moespark.ops.OpChecks.nonNull;
import static org.moespark.ops.OpChecks.positive;

/**
 * Paddle incubate {@code moe_dispatch} (moe-ops-semantics.md §5; FastDeploy
 * {@code moe_expert_dispatch}): gating, top-k and the expert-major permutation of the tokens, with
 * no padding and no dropping ({@code N·k} output rows). Java reference and CPU backend.
 *
 * <p>Gating modes (§5.2):
 *
 * <ul>
 *   <li>default: fp32 softmax over all E experts ({@code exp(x - max) * (1/sum)}), top-k of the
 *       probabilities, weights = the selected probabilities, <b>not</b> renormalised (that is
 *       {@code moe_reduce}'s {@code norm_topk_prob}).
 *   <li>{@code topkOnlyMode}: no softmax; top-k directly on {@code gating_output}, weight = the raw
 *       value. Takes precedence over {@code groupMoe} (as upstream's launcher does). <i>Upstream
 *       bug not reproduced (§16.15):</i> upstream seeds its arg-max with (expert 0, value -1), so
 *       values below -1 are never selected and expert 0 with weight -1 comes out instead; here any
 *       finite values are ranked correctly.
 *   <li>{@code groupMoe} (requires {@code E % k == 0}): experts form k contiguous groups of
 *       {@code G = E/k}; a softmax is taken inside each group; slot j is the argmax of group j
 *       (lower index on ties) with weight = its in-group probability. This is the intended semantics;
 *       <i>upstream differs</i> for power-of-two {@code E ≤ 256} (group_moe silently ignored there)
 *       and can divide by the wrong group's factor under rounding (§5.2 caveats).
 * </ul>
 *
 * <p>Permutation (§5.3): row order is expert ascending, then token ascending.
 * {@code permute_input[dest] = x[t]}; {@code permute_indices_per_token[j][t] = dest} (k-major);
 * {@code token_nums_per_expert[e]} is the <b>inclusive prefix sum</b> of rows whose expert ≤ e
 * (FastDeploy's {@code tokens_expert_prefix_sum}; the upstream name is misleading), int64.
 */
public final class MoeDispatch {
  private MoeDispatch() {}

  /**
   * The outputs of {@code moe_dispatch} under their upstream names.
   *
   * @param <X> {@code short[]} (bf16 bits) or {@code float[]}
   * @param permuteInput {@code [N*k, d]} rows grouped by expert
   * @param tokenNumsPerExpert {@code [E]} int64 inclusive prefix sum of rows per expert
   * @param permuteIndicesPerToken {@code [k, N]} row of token t's j-th choice at {@code [j*N + t]}
   * @param expertScalesFloat {@code [N, k]} fp32 routing weights
   * @param topKIndices {@code [N, k]} chosen expert ids, selection order
   */
  public record Result<X>(X permuteInput, long[] tokenNumsPerExpert, int[] permuteIndicesPerToken,
      float[] expertScalesFloat, int[] topKIndices) {}

  /** Gating and permutation maps, without the data movement. */
  public record Maps(int tokens, int numExperts, int moeTopk, long[] tokenNumsPerExpert,
      int[] permuteIndicesPerToken, float[] expertScalesFloat, int[] topKIndices, int[] sourceTokenOfRow) {}

  /** {@code moe_dispatch} on bf16 tokens. */
  public static Result<short[]> dispatch(short[] x, int tokens, int hidden, float[] gatingOutput, int numExperts,
      int moeTopk, boolean groupMoe, boolean topkOnlyMode) {
    checkX(x == null ? -1 : x.length, tokens, hidden);
    Maps m = maps(gatingOutput, tokens, numExperts, moeTopk, groupMoe, topkOnlyMode);
    short[] out = new short[elements("MoeDispatch", "permuteInput", m.sourceTokenOfRow.length, hidden)];
    for (int r = 0; r < m.sourceTokenOfRow.length; r++) {
      System.arraycopy(x, m.sourceTokenOfRow[r] * hidden, out, r * hidden, hidden);
    }
    return new Result<>(out, m.tokenNumsPerExpert, m.permuteIndicesPerToken, m.expertScalesFloat, m.topKIndices);
  }

  /** {@code moe_dispatch} on fp32 tokens. */
  public static Result<float[]> dispatch(float[] x, int tokens, int hidden, float[] gatingOutput, int numExperts,
      int moeTopk, boolean groupMoe, boolean topkOnlyMode) {
    checkX(x == null ? -1 : x.length, tokens, hidden);
    Maps m = maps(gatingOutput, tokens, numExperts, moeTopk, groupMoe, topkOnlyMode);
    float[] out = new float[elements("MoeDispatch", "permuteInput", m.sourceTokenOfRow.length, hidden)];
    for (int r = 0; r < m.sourceTokenOfRow.length; r++) {
      System.arraycopy(x, m.sourceTokenOfRow[r] * hidden, out, r * hidden, hidden);
    }
    return new Result<>(out, m.tokenNumsPerExpert, m.permuteIndicesPerToken, m.expertScalesFloat, m.topKIndices);
  }

  /**
   * Gating plus permutation maps.
   *
   * @param gatingOutput {@code [tokens, numExperts]} fp32 (logits, or probabilities with
   *     {@code topkOnlyMode}); NaN rejected, and +inf / all -inf rows rejected where a softmax is taken
   * @param moeTopk k in {@code [1, numExperts]}
   */
  public static Maps maps(float[] gatingOutput, int tokens, int numExperts, int moeTopk, boolean groupMoe,
      boolean topkOnlyMode) {
    String op = "MoeDispatch";
    nonNegative(op, "tokens", tokens);
    positive(op, "numExperts", numExperts);
    OpChecks.inRange(op, "moeTopk", moeTopk, 1, numExperts);
    nonNull(op, "gatingOutput", gatingOutput);
    length(op, "gatingOutput", gatingOutput.length, (long) tokens * numExperts,
        "[" + tokens + ", " + numExperts + "]");
    if (groupMoe && numExperts % moeTopk != 0) {
      throw fail(op, "groupMoe needs numExperts (" + numExperts + ") divisible by moeTopk (" + moeTopk + ")");
    }
    for (int i = 0; i < gatingOutput.length; i++) {
      if (Float.isNaN(gatingOutput[i])) {
        throw fail(op, "gatingOutput[" + (i / numExperts) + ", " + (i % numExperts) + "] is NaN");
      }
    }
    int nk = elements(op, "rows [tokens * moeTopk]", tokens, moeTopk);
    int[] ids = new int[nk];
    float[] w = new float[nk];
    float[] p = new float[numExperts];
    int[] one = new int[1];
    int groupSize = numExperts / moeTopk;
    for (int t = 0; t < tokens; t++) {
      int base = t * numExperts;
      if (topkOnlyMode) {
        Routing.topK(gatingOutput, base, numExperts, moeTopk, ids, t * moeTopk);
        for (int j = 0; j < moeTopk; j++) {
          w[t * moeTopk + j] = gatingOutput[base + ids[t * moeTopk + j]];
        }
      } else if (groupMoe) {
        for (int g = 0; g < moeTopk; g++) {
          int off = base + g * groupSize;
          requireSoftmaxable(op, gatingOutput, off, groupSize, t, g * groupSize);
          Routing.softmax(gatingOutput, off, groupSize, p, 0);
          Routing.topK(p, 0, groupSize, 1, one, 0);
          ids[t * moeTopk + g] = g * groupSize + one[0];
          w[t * moeTopk + g] = p[one[0]];
        }
      } else {
        requireSoftmaxable(op, gatingOutput, base, numExperts, t, 0);
        Routing.softmax(gatingOutput, base, numExperts, p, 0);
        Routing.topK(p, 0, numExperts, moeTopk, ids, t * moeTopk);
        for (int j = 0; j < moeTopk; j++) {
          w[t * moeTopk + j] = p[ids[t * moeTopk + j]];
        }
      }
    }
    // Stable counting sort by expert over the row-major (t, j) order = expert asc, then token asc.
    long[] prefix = new long[numExperts];
    int[] count = new int[numExperts];
    for (int id : ids) {
      count[id]++;
    }
    int[] start = new int[numExperts];
    long acc = 0;
    for (int e = 0; e < numExperts; e++) {
      start[e] = (int) acc;
      acc += count[e];
      prefix[e] = acc;
    }
    int[] perm = new int[nk];
    int[] src = new int[nk];
    for (int t = 0; t < tokens; t++) {
      for (int j = 0; j < moeTopk; j++) {
        int dest = start[ids[t * moeTopk + j]]++;
        perm[j * tokens + t] = dest;
        src[dest] = t;
      }
    }
    return new Maps(tokens, numExperts, moeTopk, prefix, perm, w, ids, src);
  }

  private static void requireSoftmaxable(String op, float[] x, int off, int n, int token, int firstExpert) {
    boolean anyFinite = false;
    for (int i = 0; i < n; i++) {
      float v = x[off + i];
      if (v == Float.POSITIVE_INFINITY) {
        throw fail(op, "gatingOutput[" + token + ", " + (firstExpert + i) + "] is +inf; softmax needs finite or -inf");
      }
      anyFinite |= v != Float.NEGATIVE_INFINITY;
    }
    if (!anyFinite) {
      throw fail(op, "token " + token + ": experts " + firstExpert + ".." + (firstExpert + n - 1)
          + " are all -inf; softmax is undefined");
    }
  }

  private static void checkX(int length, int tokens, int hidden) {
    String op = "MoeDispatch";
    nonNegative(op, "tokens", tokens);
    positive(op, "hidden", hidden);
    if (length < 0) {
      throw fail(op, "x must not be null");
    }
    elements(op, "x", tokens, hidden);
    length(op, "x", length, (long) tokens * hidden, "[" + tokens + ", " + hidden + "]");
  }
}
