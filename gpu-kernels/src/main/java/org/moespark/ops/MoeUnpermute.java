package org.moespark.ops;

import static org.moespark.ops.OpChecks.elements;
import static org.moespark.ops.OpChecks.fail;
import static org.moespark.ops.OpChecks.length;
import static org.moespark.ops.OpChecks.nonNegative;
import static org.moespark.ops.OpChecks.nonNull;
import static org.moespark.ops.OpChecks.positive;

import org.moespark.formats.Bf16;

/**
 * Paddle {@code paddle.nn.functional.moe_unpermute} (moe-ops-semantics.md §3): the inverse of
 * {@link MoePermute}, reducing each token's expert rows back into one row. Java reference and CPU
 * backend.
 *
 * <p>Per token t and column c (the summation order is fixed, so the result is bitwise
 * deterministic and a per-token gather-reduce on the GPU reproduces it exactly):
 *
 * <pre>
 * sum = 0f; cnt = 0
 * for e = 0 .. E-1 (ascending expert id):  r = rowmap[t][e]; if r &lt; 0 continue
 *     cnt++; raw = Xu[r][c]
 *     sum = weighted ? fma(float(raw), prob_unz[r], sum) : sum + float(raw)       (fp32, RN)
 * out[t][c] = cnt == 0 ? +0
 *           : cnt == 1 &amp;&amp; !weighted ? raw                 (stored bits, "prevent subnormal downcast")
 *           : bf16_rne(sum)
 * </pre>
 *
 * <b>The classic op does not weight</b>: callers pre-multiply the expert outputs by
 * {@code token_prob_unzipped} (the seed example does), or pass {@code weightedCombine = true}.
 *
 * <p><b>Upstream bug not reproduced (§3.2, §16.12):</b> Paddle's 2026 weighted kernel keeps the
 * {@code cnt == 1 → raw} shortcut, so a token with exactly one expert gets its row back
 * <i>unweighted</i>. Here the weight is applied to every contributor: with one contributor the
 * output is {@code bf16_rne(float(raw) * prob)}.
 *
 * <p>{@code useMixPrecision = false} reproduces the older kernel's bf16 accumulation: after every
 * expert {@code acc = bf16_rne(float(acc) + float(raw))} (or the fma in weighted mode), starting from
 * bf16 +0, with no single-contributor shortcut. (Upstream's 2026 kernel ignores the flag and always
 * accumulates in fp32, §16.13; the default here is {@code true}.)
 *
 * <p>{@code expert_prob_topk[t][k] = route[t][k] >= 0 ? prob_unz[rowmap[t][route[t][k]]] : 0}; the
 * routemap is used only for that.
 */
public final class MoeUnpermute {
  private MoeUnpermute() {}

  /**
   * The outputs of {@code moe_unpermute}.
   *
   * @param <X> {@code short[]} (bf16 bits) or {@code float[]}
   * @param hiddenStates {@code [S, H]}
   * @param expertProbTopk {@code [S, K]} fp32, 0 in empty slots
   */
  public record Result<X>(X hiddenStates, float[] expertProbTopk) {}

  /** The classic call: unweighted, fp32 accumulation. */
  public static Result<short[]> unpermute(short[] hiddenStatesUnzipped, int rows, int hidden,
      int[] zippedExpertwiseRowmap, int[] expertRoutemapTopk, float[] tokenProbUnzipped, int totalZippedTokens,
      int topK, int numExperts) {
    return unpermute(hiddenStatesUnzipped, rows, hidden, zippedExpertwiseRowmap, expertRoutemapTopk,
        tokenProbUnzipped, totalZippedTokens, topK, numExperts, true, false);
  }

  /**
   * {@code moe_unpermute} on bf16 rows.
   *
   * @param hiddenStatesUnzipped {@code [rows, hidden]} bf16 bits (rows = R of the permute)
   * @param zippedExpertwiseRowmap {@code [S, E]} from {@link MoePermute}
   * @param expertRoutemapTopk {@code [S, K]} the routemap given to the permute
   * @param tokenProbUnzipped {@code [rows]}
   * @param totalZippedTokens S
   * @param useMixPrecision fp32 accumulation (true, default) or per-expert bf16 rounding (false)
   * @param weightedCombine multiply each contributor by its {@code tokenProbUnzipped} (fma)
   */
  public static Result<short[]> unpermute(short[] hiddenStatesUnzipped, int rows, int hidden,
      int[] zippedExpertwiseRowmap, int[] expertRoutemapTopk, float[] tokenProbUnzipped, int totalZippedTokens,
      int topK, int numExperts, boolean useMixPrecision, boolean weightedCombine) {
    String op = "MoeUnpermute";
    int n = check(op, hiddenStatesUnzipped == null ? -1 : hiddenStatesUnzipped.length, rows, hidden,
        zippedExpertwiseRowmap, expertRoutemapTopk, tokenProbUnzipped, totalZippedTokens, topK, numExperts);
    short[] out = new short[n];
    for (int t = 0; t < totalZippedTokens; t++) {
      int rm = t * numExperts;
      for (int c = 0; c < hidden; c++) {
        int cnt = 0;
        short raw = 0;
        float sum = 0f;
        short acc = 0;
        for (int e = 0; e < numExperts; e++) {
          int r = zippedExpertwiseRowmap[rm + e];
          if (r < 0) {
            continue;
          }
          cnt++;
          raw = hiddenStatesUnzipped[r * hidden + c];
          float x = Bf16.decode(raw);
          if (useMixPrecision) {
            sum = weightedCombine ? Math.fma(x, tokenProbUnzipped[r], sum) : sum + x;
          } else {
            float a = Bf16.decode(acc);
            acc = Bf16.encode(weightedCombine ? Math.fma(x, tokenProbUnzipped[r], a) : a + x);
          }
        }
        short v;
        if (cnt == 0) {
          v = 0;
        } else if (!useMixPrecision) {
          v = acc;
        } else if (cnt == 1 && !weightedCombine) {
          v = raw;
        } else {
          v = Bf16.encode(sum);
        }
        out[t * hidden + c] = v;
      }
    }
    return new Result<>(out, probs(zippedExpertwiseRowmap, expertRoutemapTopk, tokenProbUnzipped,
        totalZippedTokens, topK, numExperts));
  }

  /**
   * {@code moe_unpermute} on fp32 rows (the CPU layer's path; not an upstream dtype): same order
   * and rules with the final rounding to bf16 omitted — fp32 sum in ascending expert order,
   * {@code cnt == 1} unweighted returns the stored value, {@code cnt == 0} gives +0, weighted mode
   * uses {@code fma} for every contributor.
   */
  public static Result<float[]> unpermute(float[] hiddenStatesUnzipped, int rows, int hidden,
      int[] zippedExpertwiseRowmap, int[] expertRoutemapTopk, float[] tokenProbUnzipped, int totalZippedTokens,
      int topK, int numExperts, boolean weightedCombine) {
    String op = "MoeUnpermute";
    int n = check(op, hiddenStatesUnzipped == null ? -1 : hiddenStatesUnzipped.length, rows, hidden,
        zippedExpertwiseRowmap, expertRoutemapTopk, tokenProbUnzipped, totalZippedTokens, topK, numExperts);
    float[] out = new float[n];
    for (int t = 0; t < totalZippedTokens; t++) {
      int rm = t * numExperts;
      for (int c = 0; c < hidden; c++) {
        int cnt = 0;
        float raw = 0f;
        float sum = 0f;
        for (int e = 0; e < numExperts; e++) {
          int r = zippedExpertwiseRowmap[rm + e];
          if (r < 0) {
            continue;
          }
          cnt++;
          raw = hiddenStatesUnzipped[r * hidden + c];
          sum = weightedCombine ? Math.fma(raw, tokenProbUnzipped[r], sum) : sum + raw;
        }
        out[t * hidden + c] = cnt == 0 ? 0f : (cnt == 1 && !weightedCombine) ? raw : sum;
      }
    }
    return new Result<>(out, probs(zippedExpertwiseRowmap, expertRoutemapTopk, tokenProbUnzipped,
        totalZippedTokens, topK, numExperts));
  }

  private static float[] probs(int[] rowmap, int[] route, float[] probUnz, int tokens, int topK, int numExperts) {
    float[] out = new float[tokens * topK];
    for (int t = 0; t < tokens; t++) {
      for (int k = 0; k < topK; k++) {
        int e = route[t * topK + k];
        if (e >= 0) {
          out[t * topK + k] = probUnz[rowmap[t * numExperts + e]];
        }
      }
    }
    return out;
  }

  /**
   * Validates shapes, ids and the rowmap against the routemap (the OOB hardening of Paddle PR
   * #79211, made strict): every rowmap entry is -1 or a row in {@code [0, rows)}, and expert e of
   * token t has a row exactly when the routemap names e in row t.
   */
  private static int check(String op, int dataLength, int rows, int hidden, int[] rowmap, int[] route,
      float[] probUnz, int tokens, int topK, int numExperts) {
    nonNegative(op, "rows", rows);
    positive(op, "hidden", hidden);
    nonNegative(op, "totalZippedTokens", tokens);
    positive(op, "topK", topK);
    OpChecks.inRange(op, "numExperts", numExperts, 1, MoePermute.MAX_EXPERTS);
    if (dataLength < 0) {
      throw fail(op, "hiddenStatesUnzipped must not be null");
    }
    nonNull(op, "zippedExpertwiseRowmap", rowmap);
    nonNull(op, "expertRoutemapTopk", route);
    nonNull(op, "tokenProbUnzipped", probUnz);
    elements(op, "hiddenStatesUnzipped", rows, hidden);
    length(op, "hiddenStatesUnzipped", dataLength, (long) rows * hidden, "[" + rows + ", " + hidden + "]");
    length(op, "tokenProbUnzipped", probUnz.length, rows, "[" + rows + "]");
    elements(op, "zippedExpertwiseRowmap", tokens, numExperts);
    length(op, "zippedExpertwiseRowmap", rowmap.length, (long) tokens * numExperts,
        "[" + tokens + ", " + numExperts + "]");
    elements(op, "expertRoutemapTopk", tokens, topK);
    length(op, "expertRoutemapTopk", route.length, (long) tokens * topK, "[" + tokens + ", " + topK + "]");
    int n = elements(op, "hiddenStates [tokens, hidden]", tokens, hidden);
    MoePermute.histogram(op, route, tokens, topK, numExperts);
    boolean[] named = new boolean[numExperts];
    for (int t = 0; t < tokens; t++) {
      java.util.Arrays.fill(named, false);
      for (int k = 0; k < topK; k++) {
        int e = route[t * topK + k];
        if (e >= 0) {
          named[e] = true;
        }
      }
      for (int e = 0; e < numExperts; e++) {
        int r = rowmap[t * numExperts + e];
        if (r < -1 || r >= rows) {
          throw fail(op, "zippedExpertwiseRowmap[" + t + ", " + e + "] = " + r + " is outside [-1, " + rows + ")");
        }
        if ((r >= 0) != named[e]) {
          throw fail(op, "zippedExpertwiseRowmap[" + t + ", " + e + "] = " + r + " but expertRoutemapTopk row " + t
              + (named[e] ? " routes the token to expert " : " does not route the token to expert ") + e);
        }
      }
    }
    return n;
  }
}
