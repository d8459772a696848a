package org.moespark.jobs;

import java.io.Serializable;

/**
 * Deterministic synthetic embeddings: row {@code r} of seed {@code s} is a pure function of
 * {@code (s, r, dim, distribution)}, so a data set is identical however it is partitioned, on any
 * JVM (only integer arithmetic and {@link StrictMath} are used).
 *
 * <p>Random numbers: each row has its own SplitMix64 stream (Steele, Lea, Flood 2014; the
 * {@code java.util.SplittableRandom} generator) whose initial state is
 * {@code mix64(mix64(seed) + GOLDEN * (row + 1))}. Distributions:
 *
 * <ul>
 *   <li>{@code uniform}: independent U[-1, 1) per component ({@code (next >>> 11) * 2^-53 * 2 - 1});
 *   <li>{@code normal}: independent N(0, 1) per component, Box–Muller on pairs of uniforms in (0, 1];
 *   <li>{@code clustered}: {@code clusters} centres drawn N(0, 1) per component (from the seed
 *       only), each row picks a centre uniformly and adds N(0, spread²) noise per component.
 * </ul>
 */
public final class EmbeddingGenerator implements Serializable {
  private static final long serialVersionUID = 1L;
  static final long GOLDEN = 0x9E3779B97F4A7C15L;

  /** The distributions {@code gen embeddings --distribution} accepts. */
  public enum Distribution {
    NORMAL, UNIFORM, CLUSTERED;

    /** Parses the lower-case command-line name. */
    public static Distribution parse(String name) {
      for (Distribution d : values()) {
        if (d.name().toLowerCase(java.util.Locale.ROOT).equals(name)) {
          return d;
        }
      }
      throw new IllegalArgumentException("distribution: expected normal|uniform|clustered, got '" + name + "'");
    }
  }

  private final int dim;
  private final long seed;
  private final Distribution distribution;
  private final float[][] centres;
  private final double spread;

  /**
   * @param dim embedding width, at least 1
   * @param seed any value
   * @param distribution see the class comment
   * @param clusters number of centres for {@code clustered} (at least 1; ignored otherwise)
   * @param spread standard deviation of the noise around a centre for {@code clustered} (finite, at
   *     least 0; ignored otherwise)
   */
  public EmbeddingGenerator(int dim, long seed, Distribution distribution, int clusters, double spread) {
    if (dim < 1) {
      throw new IllegalArgumentException("dim: expected >= 1, got " + dim);
    }
    if (distribution == null) {
      throw new IllegalArgumentException("distribution: expected normal|uniform|clustered, got null");
    }
    this.dim = dim;
    this.seed = seed;
    this.distribution = distribution;
    if (distribution == Distribution.CLUSTERED) {
      if (clusters < 1) {
        throw new IllegalArgumentException("clusters: expected >= 1, got " + clusters);
      }
      if (!(spread >= 0) || Double.isInfinite(spread)) {
        throw new IllegalArgumentException("spread: expected a finite value >= 0, got " + spread);
      }
      centres = new float[clusters][];
      for (int c = 0; c < clusters; c++) {
        // Centre streams are derived from a different constant than row streams.
        long[] state = {mix64(mix64(seed ^ 0xC2B2AE3D27D4EB4FL) + GOLDEN * (c + 1L))};
        centres[c] = new float[dim];
        fillNormal(state, centres[c], 0, 1.0);
      }
    } else {
      centres = null;
    }
    this.spread = spread;
  }

  public int dim() {
    return dim;
  }

  /** The embedding of row {@code row} (a new array of {@link #dim()} floats). */
  public float[] row(long row) {
    float[] out = new float[dim];
    long[] state = {mix64(mix64(seed) + GOLDEN * (row + 1))};
    switch (distribution) {
      case UNIFORM:
        for (int i = 0; i < dim; i++) {
          out[i] = (float) (unit53(next(state)) * 2.0 - 1.0);
        }
        break;
      case NORMAL:
        fillNormal(state, out, 0, 1.0);
        break;
      case CLUSTERED: {
        int c = (int) Long.remainderUnsigned(next(state), centres.length);
        fillNormal(state, out, 0, spread);
        float[] centre = centres[c];
        for (int i = 0; i < dim; i++) {
          out[i] = (float) (centre[i] + (double) out[i]);
        }
        break;
      }
      default:
        throw new AssertionError(distribution);
    }
    return out;
  }

  /** The centre row {@code r} of a clustered generator was drawn around (for tests and demos). */
  public int clusterOf(long row) {
    if (centres == null) {
      throw new IllegalStateException("clusterOf: distribution is " + distribution + ", not CLUSTERED");
    }
    long[] state = {mix64(mix64(seed) + GOLDEN * (row + 1))};
    return (int) Long.remainderUnsigned(next(state), centres.length);
  }

  private static void fillNormal(long[] state, float[] out, int from, double sigma) {
    for (int i = from; i < out.length; i += 2) {
      double u1 = ((next(state) >>> 11) + 1) * 0x1.0p-53; // (0, 1]
      double u2 = unit53(next(state));                     // [0, 1)
      double r = StrictMath.sqrt(-2.0 * StrictMath.log(u1));
      double a = 2.0 * StrictMath.PI * u2;
      out[i] = (float) (sigma * r * StrictMath.cos(a));
      if (i + 1 < out.length) {
        out[i + 1] = (float) (sigma * r * StrictMath.sin(a));
      }
    }
  }

  private static double unit53(long x) {
    return (x >>> 11) * 0x1.0p-53;
  }

  /** One SplitMix64 step. */
  static long next(long[] state) {
    state[0] += GOLDEN;
    return mix64(state[0]);
  }

  /** The SplitMix64 output function (Stafford variant 13). */
  static long mix64(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
