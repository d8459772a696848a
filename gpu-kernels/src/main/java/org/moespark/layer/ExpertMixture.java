package org.moespark.layer;

import java.util.List;

/**
 * The expert stage of a MoE layer given a routing: {@code y[t] = Σ_j score[t][j] · Expert_{id[t][j]}(x[t])}
 * — TensorRT {@code IMoELayer}'s math (moe-ops-semantics §11.2): no softmax and no renormalisation
 * inside; duplicate experts in a token's row are allowed and each slot is computed independently.
 *
 * <p>Order (deterministic, no atomics): tokens are grouped by expert — experts ascending, within an
 * expert the (token, slot) pairs ascending (Paddle {@code moe_permute}'s expert-major layout without
 * padding) — each group runs as one batched GEMM, and every token accumulates its weighted expert
 * outputs in ascending expert order (then slot order), in fp32 starting from +0.0, or in
 * {@link Compute#BF16} as transformers' eager {@code index_add_} on a bf16 tensor does:
 * {@code acc = bf16(acc + bf16(score·out))}.
 *
 * <p>Immutable and thread-safe.
 */
public final class ExpertMixture {
  private final ExpertFfn[] experts;
  private final int hidden;
  private final Compute compute;

  /** @param experts one FFN per expert id, all of the same hidden size; at least one */
  public ExpertMixture(List<ExpertFfn> experts, Compute compute) {
    if (experts == null || experts.isEmpty()) {
      throw new IllegalArgumentException("an expert mixture needs at least one expert, got "
          + (experts == null ? "null" : "0"));
    }
    if (compute == null) {
      throw new IllegalArgumentException("compute must not be null");
    }
    this.experts = experts.toArray(new ExpertFfn[0]);
    this.hidden = this.experts[0].hidden();
    for (int e = 0; e < this.experts.length; e++) {
      if (this.experts[e] == null) {
        throw new IllegalArgumentException("expert " + e + " is null");
      }
      if (this.experts[e].hidden() != hidden) {
        throw new IllegalArgumentException("expert " + e + " has hidden size " + this.experts[e].hidden()
            + ", expected " + hidden + " (expert 0's)");
      }
    }
    this.compute = compute;
  }

  public int numExperts() {
    return experts.length;
  }

  public int hidden() {
    return hidden;
  }

  public ExpertFfn expert(int e) {
    return experts[e];
  }

  /**
   * @param x row-major {@code [tokens, H]}
   * @param ids row-major {@code [tokens, topK]} expert ids in {@code [0, E)}
   * @param scores row-major {@code [tokens, topK]} weights applied to each slot's expert output
   * @return row-major {@code [tokens, H]}
   */
  public float[] forward(float[] x, int tokens, int topK, int[] ids, float[] scores) {
    if (tokens < 0) {
      throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
    }
    if (topK <= 0) {
      throw new IllegalArgumentException("topK must be > 0, got " + topK);
    }
    if (x == null || x.length != (long) tokens * hidden) {
      throw new IllegalArgumentException("x must be [" + tokens + ", " + hidden + "] = " + (long) tokens * hidden
          + " floats, got " + (x == null ? "null" : x.length));
    }
    long slots = (long) tokens * topK;
    if (ids == null || ids.length != slots) {
      throw new IllegalArgumentException("ids must be [" + tokens + ", " + topK + "] = " + slots + " ints, got "
          + (ids == null ? "null" : ids.length));
    }
    if (scores == null || scores.length != slots) {
      throw new IllegalArgumentException("scores must be [" + tokens + ", " + topK + "] = " + slots
          + " floats, got " + (scores == null ? "null" : scores.length));
    }
    int numE = experts.length;
    int[] offsets = new int[numE + 1];
    for (int s = 0; s < ids.length; s++) {
      int e = ids[s];
      if (e < 0 || e >= numE) {
        throw new IllegalArgumentException("ids[token " + s / topK + "][slot " + s % topK + "] = " + e
            + " is not an expert id in [0, " + numE + ")");
      }
      offsets[e + 1]++;
    }
    int maxCount = 0;
    for (int e = 0; e < numE; e++) {
      maxCount = Math.max(maxCount, offsets[e + 1]);
      offsets[e + 1] += offsets[e];
    }
    // order[p] = slot index (token·K + j) of permuted row p: experts ascending, slots ascending.
    int[] order = new int[ids.length];
    int[] fill = offsets.clone();
    for (int s = 0; s < ids.length; s++) {
      order[fill[ids[s]]++] = s;
    }
    float[] y = new float[x.length];
    if (maxCount == 0) {
      return y;
    }
    boolean bf16 = compute == Compute.BF16;
    int rowsPerPass = Math.min(maxCount, ExpertFfn.CHUNK);
    float[] xb = new float[rowsPerPass * hidden];
    float[] ob = new float[rowsPerPass * hidden];
    for (int e = 0; e < numE; e++) {
      for (int p0 = offsets[e]; p0 < offsets[e + 1]; p0 += rowsPerPass) {
        int n = Math.min(rowsPerPass, offsets[e + 1] - p0);
        for (int i = 0; i < n; i++) {
          int t = order[p0 + i] / topK;
          System.arraycopy(x, t * hidden, xb, i * hidden, hidden);
        }
        experts[e].forward(xb, 0, n, ob, 0);
        for (int i = 0; i < n; i++) {
          int s = order[p0 + i];
          float w = scores[s];
          int yb = (s / topK) * hidden;
          int obase = i * hidden;
          if (bf16) {
            for (int c = 0; c < hidden; c++) {
              y[yb + c] = LayerNumerics.bf16(y[yb + c] + LayerNumerics.bf16(ob[obase + c] * w));
            }
          } else {
            for (int c = 0; c < hidden; c++) {
              y[yb + c] += ob[obase + c] * w;
            }
          }
        }
      }
    }
    return y;
  }
}
