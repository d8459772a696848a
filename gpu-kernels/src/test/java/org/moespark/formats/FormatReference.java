package org.moespark.formats;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Independent references for the mini-float formats: values from the textbook formula (double
 * arithmetic, Math.pow) and round-to-nearest-even by exact BigDecimal distances to the two neighbouring
 * grid values. Nothing here calls the code under test.
 */
final class FormatReference {
  private FormatReference() {}

  private static final java.util.Map<String, double[]> GRIDS = new java.util.concurrent.ConcurrentHashMap<>();

  /** Magnitude of code c (sign bit excluded) of a format with m mantissa bits and the given bias. */
  static double magnitude(int c, int m, int bias) {
    int e = c >> m;
    int f = c & ((1 << m) - 1);
    if (e == 0) {
      return f * Math.pow(2, 1 - bias - m);
    }
    return (1 + f / Math.pow(2, m)) * Math.pow(2, e - bias);
  }

  /**
   * RNE of |x| onto magnitude codes 0..maxCode (ascending values) with a virtual code maxCode+1 (the
   * next value of the exponent progression): returns the nearest code, ties to the even code; a
   * result of maxCode+1 means "rounds past the largest finite value".
   */
  static int nearestMagnitudeCode(float x, int m, int bias, int maxCode) {
    BigDecimal ax = new BigDecimal(Math.abs((double) x));
    double[] grid = GRIDS.computeIfAbsent(m + "/" + bias + "/" + maxCode, k -> {
      double[] g = new double[maxCode + 2];
      for (int c = 0; c < g.length; c++) {
        g[c] = magnitude(c, m, bias);
      }
      return g;
    });
    double ad = Math.abs((double) x);
    int lo = 0;
    int hi = maxCode + 1;
    if (ad >= grid[hi]) {
      return hi;
    }
    // largest code with value <= |x| (doubles hold both exactly, so this comparison is exact)
    while (hi - lo > 1) {
      int mid = (lo + hi) >>> 1;
      if (grid[mid] <= ad) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    BigDecimal dLo = ax.subtract(new BigDecimal(grid[lo]));
    BigDecimal dHi = new BigDecimal(grid[lo + 1]).subtract(ax);
    int cmp = dLo.compareTo(dHi);
    if (cmp < 0) {
      return lo;
    }
    if (cmp > 0) {
      return lo + 1;
    }
    return (lo & 1) == 0 ? lo : lo + 1;
  }

  /**
   * Interesting inputs for a format: every grid value, the midpoints between neighbours (including
   * the virtual one past the top) and the floats just below and above each midpoint and value, with
   * both signs, plus zeros, infinities, NaN, fp32 extremes and random floats across all exponents.
   */
  static float[] probes(int m, int bias, int maxCode, long seed, int randomCount) {
    return probes(m, bias, maxCode, seed, randomCount, 1);
  }

  /** As above, visiting every {@code stride}-th grid value (plus the top two) to bound the cost. */
  static float[] probes(int m, int bias, int maxCode, long seed, int randomCount, int stride) {
    List<Float> out = new ArrayList<>();
    for (int c = 0; c <= maxCode + 1; c = c + stride > maxCode && c < maxCode ? maxCode : c + stride) {
      float v = (float) magnitude(c, m, bias);
      add(out, v);
      if (c <= maxCode) {
        float mid = (float) ((magnitude(c, m, bias) + magnitude(c + 1, m, bias)) / 2);
        add(out, mid);
      }
    }
    float[] specials = {0f, Float.MIN_VALUE, Float.MIN_NORMAL, Float.MAX_VALUE, Float.POSITIVE_INFINITY,
        Float.NaN, Float.intBitsToFloat(0x7FA00001), 1e-30f, 1e30f};
    for (float s : specials) {
      out.add(s);
      out.add(-s);
    }
    Random r = new Random(seed);
    for (int i = 0; i < randomCount; i++) {
      int bits = r.nextInt();
      if ((i & 1) == 0) {
        // concentrate on the format's range: exponent within [-(bias+m+3), bias+4]
        int e = r.nextInt(2 * bias + m + 8) - (bias + m + 3);
        bits = (bits & 0x807FFFFF) | ((e + 127) << 23);
      }
      out.add(Float.intBitsToFloat(bits));
    }
    float[] a = new float[out.size()];
    for (int i = 0; i < a.length; i++) {
      a[i] = out.get(i);
    }
    return a;
  }

  private static void add(List<Float> out, float v) {
    for (float w : new float[] {v, Math.nextDown(v), Math.nextUp(v)}) {
      if (w >= 0) {
        out.add(w);
        out.add(-w);
      }
    }
  }
}
