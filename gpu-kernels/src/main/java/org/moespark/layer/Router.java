package org.moespark.layer;

/**
 * The CPU router of {@link MoeLayer}: logits through one sgemm, then the family's top-k rule
 * ({@link RouterSpec.Kind}). Immutable and thread-safe.
 *
 * <p>Top-k order and ties: the k chosen experts are listed by descending selection value (the
 * probability, the logit, or DeepSeek's biased score), equal values by ascending expert id (the
 * tie-break of every upstream GPU kernel; torch leaves exact ties unspecified). NaN ranks above every
 * number (as in {@code torch.topk}); a token whose logits hold a NaN gets NaN weights and hence a NaN
 * output row — other tokens are unaffected.
 *
 * <p>The selection rules are those of {@code org.moespark.ops.Routing} (a test checks that both agree
 * on the same logits); the layer keeps its own loop because it isolates NaN rows instead of rejecting
 * the batch (a Spark partition must not fail for one bad row) and applies the bf16 casts in between.
 *
 * <p>Differences from transformers 5.17, on purpose:
 * <ul>
 *   <li>DeepSeek-V3: experts of dropped groups are masked with {@code -inf} as in DeepSeek's reference
 *       {@code inference/model.py::Gate}; transformers masks them with {@code 0.0}, which lets an expert
 *       of a dropped group win when every kept biased score is negative (moe-ops-semantics §14). The
 *       two agree whenever some kept biased score is ≥ 0.
 *   <li>DeepSeek-V3 ids are listed by descending biased score; transformers' {@code topk(sorted=False)}
 *       order is unspecified — compare the set.
 * </ul>
 */
final class Router {
  private final RouterSpec spec;
  private final float[] weight; // [E, H], bf16-rounded for Compute.BF16
  private final float[] bias;
  private final Compute compute;

  Router(RouterSpec spec, Compute compute) {
    this.spec = spec;
    this.compute = compute;
    this.weight = spec.weight().clone();
    this.bias = spec.bias() == null ? null : spec.bias().clone();
    if (compute == Compute.BF16) {
      LayerNumerics.bf16InPlace(weight, 0, weight.length);
      if (bias != null) {
        LayerNumerics.bf16InPlace(bias, 0, bias.length);
      }
    }
  }

  RouterSpec spec() {
    return spec;
  }

  /** Routing of {@code tokens} rows: {@code ids[t·K + j]}, {@code weights[t·K + j]}. */
  record Routed(int[] ids, float[] weights) {}

  /** @param x {@code [tokens, H]}, already bf16-rounded for {@link Compute#BF16} */
  Routed route(float[] x, int tokens) {
    int numE = spec.experts();
    int k = spec.topK();
    int h = spec.hidden();
    float[] logits = new float[tokens * numE];
    ExpertFfn.linearInto(x, 0, tokens, h, weight, numE, logits, 0);
    boolean bf16 = compute == Compute.BF16;
    boolean roundLogits = bf16 && spec.kind() != RouterSpec.Kind.SIGMOID_GROUPED_TOPK; // DeepSeek: fp32 router
    for (int i = 0; i < logits.length; i++) {
      float v = logits[i];
      if (bias != null) {
        v += bias[i % numE];
      }
      logits[i] = roundLogits ? LayerNumerics.bf16(v) : v;
    }
    return select(logits, tokens);
  }

  /** The family's top-k rule on ready logits {@code [tokens, E]} (bias added, bf16-rounded where the model does). */
  Routed select(float[] logits, int tokens) {
    int numE = spec.experts();
    int k = spec.topK();
    boolean bf16 = compute == Compute.BF16;
    int[] ids = new int[tokens * k];
    float[] w = new float[tokens * k];
    float[] row = new float[numE];
    float[] sel = new float[numE];
    int[] pick = new int[k];
    for (int t = 0; t < tokens; t++) {
      System.arraycopy(logits, t * numE, row, 0, numE);
      switch (spec.kind()) {
        case SOFTMAX_TOPK -> {
          softmax(row, numE);
          topK(row, numE, k, pick);
          float sum = 0f;
          for (int j = 0; j < k; j++) {
            sum += row[pick[j]];
          }
          for (int j = 0; j < k; j++) {
            float v = row[pick[j]];
            if (spec.normTopK()) {
              v /= sum;
            }
            w[t * k + j] = v;
          }
        }
        case TOPK_SOFTMAX -> {
          topK(row, numE, k, pick);
          float[] v = new float[k];
          for (int j = 0; j < k; j++) {
            v[j] = row[pick[j]];
          }
          softmax(v, k);
          System.arraycopy(v, 0, w, t * k, k);
        }
        case SIGMOID_GROUPED_TOPK -> {
          float[] cb = spec.correctionBias();
          for (int e = 0; e < numE; e++) {
            row[e] = LayerNumerics.sigmoid(row[e]);
            sel[e] = cb == null ? row[e] : row[e] + cb[e];
          }
          maskGroups(sel, numE, spec.nGroup(), spec.topkGroup());
          topK(sel, numE, k, pick);
          float sum = 0f;
          for (int j = 0; j < k; j++) {
            sum += row[pick[j]];
          }
          for (int j = 0; j < k; j++) {
            float v = row[pick[j]];
            if (spec.normTopK()) {
              v /= (sum + 1e-20f);
            }
            w[t * k + j] = v * spec.routedScalingFactor();
          }
        }
        default -> throw new IllegalStateException("unknown router kind " + spec.kind());
      }
      System.arraycopy(pick, 0, ids, t * k, k);
    }
    if (bf16 && spec.weightsInModelDtype()) {
      LayerNumerics.bf16InPlace(w, 0, w.length);
    }
    return new Routed(ids, w);
  }

  /** In-place fp32 softmax of {@code v[0, n)}: {@code exp(v - max) / Σ}, the sum in double. */
  static void softmax(float[] v, int n) {
    float max = Float.NEGATIVE_INFINITY;
    boolean nan = false;
    for (int i = 0; i < n; i++) {
      nan |= Float.isNaN(v[i]);
      max = Math.max(max, v[i]);
    }
    if (nan) {
      java.util.Arrays.fill(v, 0, n, Float.NaN);
      return;
    }
    double sum = 0;
    double[] ex = new double[n];
    for (int i = 0; i < n; i++) {
      ex[i] = Math.exp((double) v[i] - max);
      sum += ex[i];
    }
    for (int i = 0; i < n; i++) {
      v[i] = (float) (ex[i] / sum);
    }
  }

  /** Returns true when {@code a} (at index ia) ranks before {@code b} (at ib): larger first, NaN largest, lower index on ties. */
  private static boolean before(float a, int ia, float b, int ib) {
    int c = Float.compare(a, b); // NaN > +inf; -0.0 < +0.0 is irrelevant for scores
    return c > 0 || (c == 0 && ia < ib);
  }

  /** The k best indices of {@code v[0, n)} in rank order (selection by insertion; k is small). */
  static void topK(float[] v, int n, int k, int[] out) {
    int filled = 0;
    for (int i = 0; i < n; i++) {
      if (filled < k) {
        int p = filled++;
        while (p > 0 && before(v[i], i, v[out[p - 1]], out[p - 1])) {
          out[p] = out[p - 1];
          p--;
        }
        out[p] = i;
      } else if (before(v[i], i, v[out[k - 1]], out[k - 1])) {
        int p = k - 1;
        while (p > 0 && before(v[i], i, v[out[p - 1]], out[p - 1])) {
          out[p] = out[p - 1];
          p--;
        }
        out[p] = i;
      }
    }
  }

  /** DeepSeek group limit: keep the {@code keep} groups with the largest top-2 sums, set the others to -inf. */
  static void maskGroups(float[] sel, int n, int groups, int keep) {
    if (groups == keep) {
      return;
    }
    int size = n / groups;
    float[] gs = new float[groups];
    int[] two = new int[Math.min(2, size)];
    float[] g = new float[size];
    for (int grp = 0; grp < groups; grp++) {
      System.arraycopy(sel, grp * size, g, 0, size);
      topK(g, size, two.length, two);
      float s = 0f;
      for (int idx : two) {
        s += g[idx];
      }
      gs[grp] = s;
    }
    int[] kept = new int[keep];
    topK(gs, groups, keep, kept);
    boolean[] isKept = new boolean[groups];
    for (int grp : kept) {
      isKept[grp] = true;
    }
    for (int grp = 0; grp < groups; grp++) {
      if (!isKept[grp]) {
        java.util.Arrays.fill(sel, grp * size, (grp + 1) * size, Float.NEGATIVE_INFINITY);
      }
    }
  }
}
