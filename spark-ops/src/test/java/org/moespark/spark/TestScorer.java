package org.moespark.spark;

import java.util.SplittableRandom;

/**
 * A tiny deterministic MoE-like scorer for the Spark plumbing tests (the real layer is tested in
 * gpu-kernels). Router logits {@code l_e = Σ_h R[e][h] x[h]} in double, top-k by descending logit (ties to
 * the lower id), softmax over the chosen logits, expert e output {@code x ⊙ a_e + b_e}, mixed by the
 * weights. Weights derive from (seed, layer).
 */
final class TestScorer implements BatchScorer {
  final int hidden;
  final int experts;
  final int topK;
  final int layer;
  private final double[][] router;
  private final float[][] scale;
  private final float[][] bias;
  private boolean hostStaged;

  /** This scorer run through the operator's staged path ({@link HostStaging}), as a GPU scorer would be. */
  TestScorer hostStaged() {
    hostStaged = true;
    return this;
  }

  @Override
  public boolean staged() {
    return hostStaged;
  }

  /** Stagings made for host-staged test scorers (the operator pools them: one per concurrent task). */
  static final java.util.concurrent.atomic.AtomicInteger STAGINGS = new java.util.concurrent.atomic.AtomicInteger();

  @Override
  public Staging newStaging(int capacity) {
    if (!hostStaged) {
      return BatchScorer.super.newStaging(capacity);
    }
    STAGINGS.incrementAndGet();
    return new HostStaging(this, capacity);
  }

  TestScorer(int hidden, int experts, int topK, long seed, int layer) {
    this.hidden = hidden;
    this.experts = experts;
    this.topK = topK;
    this.layer = layer;
    SplittableRandom rnd = new SplittableRandom(seed * 31 + layer);
    router = new double[experts][hidden];
    scale = new float[experts][hidden];
    bias = new float[experts][hidden];
    for (int e = 0; e < experts; e++) {
      for (int h = 0; h < hidden; h++) {
        router[e][h] = rnd.nextDouble(-1, 1);
        scale[e][h] = (float) rnd.nextDouble(0.5, 1.5);
        bias[e][h] = (float) rnd.nextDouble(-0.1, 0.1);
      }
    }
  }

  @Override
  public int hiddenSize() {
    return hidden;
  }

  @Override
  public int topK() {
    return topK;
  }

  @Override
  public String backend() {
    return "cpu";
  }

  @Override
  public Scores score(float[] x, int rows) {
    if (x.length != rows * hidden) {
      throw new IllegalArgumentException("x must be [" + rows + ", " + hidden + "], got " + x.length);
    }
    float[] y = new float[rows * hidden];
    int[] ids = new int[rows * topK];
    float[] ws = new float[rows * topK];
    for (int t = 0; t < rows; t++) {
      double[] logit = new double[experts];
      for (int e = 0; e < experts; e++) {
        double s = 0;
        for (int h = 0; h < hidden; h++) {
          s += router[e][h] * x[t * hidden + h];
        }
        logit[e] = s;
      }
      boolean[] used = new boolean[experts];
      double max = Double.NEGATIVE_INFINITY;
      for (int j = 0; j < topK; j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
          if (!used[e] && (best < 0 || logit[e] > logit[best])) {
            best = e;
          }
        }
        used[best] = true;
        ids[t * topK + j] = best;
        max = Math.max(max, logit[best]);
      }
      double z = 0;
      for (int j = 0; j < topK; j++) {
        z += Math.exp(logit[ids[t * topK + j]] - max);
      }
      for (int j = 0; j < topK; j++) {
        int e = ids[t * topK + j];
        float w = (float) (Math.exp(logit[e] - max) / z);
        ws[t * topK + j] = w;
        for (int h = 0; h < hidden; h++) {
          y[t * hidden + h] += w * (x[t * hidden + h] * scale[e][h] + bias[e][h]);
        }
      }
    }
    return new Scores(rows, hidden, topK, y, ids, ws, 0, 0, 0);
  }
}
