package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.moespark.jobs.EmbeddingGenerator.Distribution;
import org.moespark.testing.Tolerance;

class EmbeddingGeneratorTest {
  @Test
  void splitMix64MatchesTheJdkSplittableRandom() {
    // java.util.SplittableRandom(s).nextLong() is mix64(s + GOLDEN): an independent implementation.
    for (long s : new long[] {0, 1, -1, 42, Long.MIN_VALUE, 0x123456789ABCDEFL}) {
      SplittableRandom ref = new SplittableRandom(s);
      long[] state = {s};
      for (int i = 0; i < 5; i++) {
        assertEquals(ref.nextLong(), EmbeddingGenerator.next(state), "seed " + s + " step " + i);
      }
    }
  }

  @Test
  void rowsArePureFunctionsOfSeedAndRow() {
    for (Distribution d : Distribution.values()) {
      EmbeddingGenerator a = new EmbeddingGenerator(33, 7, d, 5, 0.1);
      EmbeddingGenerator b = new EmbeddingGenerator(33, 7, d, 5, 0.1);
      // Asked in a different order from a different instance: same bits.
      for (long r : new long[] {1_000_000_007L, 0, 5, 1}) {
        Tolerance.assertBitEqual(b.row(r), a.row(r), d + " row " + r);
      }
      assertFalse(java.util.Arrays.equals(a.row(0), a.row(1)), d + ": rows 0 and 1 equal");
      EmbeddingGenerator other = new EmbeddingGenerator(33, 8, d, 5, 0.1);
      assertFalse(java.util.Arrays.equals(a.row(3), other.row(3)), d + ": seeds 7 and 8 give the same row 3");
    }
  }

  @Test
  void oddDimensionsAndOneWide() {
    for (int dim : new int[] {1, 2, 3, 1223}) {
      float[] v = new EmbeddingGenerator(dim, 1, Distribution.NORMAL, 1, 0).row(9);
      assertEquals(dim, v.length);
      for (float x : v) {
        assertTrue(Float.isFinite(x), "dim " + dim + ": non-finite value " + x);
      }
    }
  }

  @Test
  void normalHasZeroMeanAndUnitVariance() {
    double[] m = moments(new EmbeddingGenerator(64, 3, Distribution.NORMAL, 1, 0), 2000);
    // 128000 samples: 5 sigma of the mean is 0.014, of the variance about 0.02.
    assertEquals(0.0, m[0], 0.014, "mean");
    assertEquals(1.0, m[1], 0.02, "variance");
  }

  @Test
  void uniformIsInRangeWithVarianceOneThird() {
    EmbeddingGenerator g = new EmbeddingGenerator(64, 3, Distribution.UNIFORM, 1, 0);
    for (long r = 0; r < 500; r++) {
      for (float x : g.row(r)) {
        assertTrue(x >= -1f && x < 1f, "row " + r + ": " + x + " outside [-1, 1)");
      }
    }
    double[] m = moments(g, 2000);
    assertEquals(0.0, m[0], 0.008, "mean");
    assertEquals(1.0 / 3.0, m[1], 0.006, "variance");
  }

  @Test
  void clusteredRowsSitOnTheirCentres() {
    // spread 0: every row is exactly its centre; rows of one cluster are bit-identical.
    EmbeddingGenerator g = new EmbeddingGenerator(16, 11, Distribution.CLUSTERED, 4, 0.0);
    float[][] centre = new float[4][];
    Set<Integer> seen = new HashSet<>();
    for (long r = 0; r < 200; r++) {
      int c = g.clusterOf(r);
      assertTrue(c >= 0 && c < 4, "cluster " + c);
      seen.add(c);
      if (centre[c] == null) {
        centre[c] = g.row(r);
      } else {
        assertArrayEquals(centre[c], g.row(r), "row " + r + " of cluster " + c);
      }
    }
    assertEquals(4, seen.size(), "200 rows should use all 4 clusters");
    // spread 0.1: the noise around the centre has standard deviation 0.1.
    EmbeddingGenerator noisy = new EmbeddingGenerator(16, 11, Distribution.CLUSTERED, 4, 0.1);
    double ss = 0;
    int n = 0;
    for (long r = 0; r < 2000; r++) {
      float[] v = noisy.row(r);
      float[] c = centre[noisy.clusterOf(r)];
      for (int i = 0; i < v.length; i++) {
        ss += (v[i] - c[i]) * (double) (v[i] - c[i]);
        n++;
      }
    }
    assertEquals(0.01, ss / n, 0.0006, "noise variance");
  }

  @Test
  void argumentsAreChecked() {
    assertTrue(assertThrows(IllegalArgumentException.class, () -> new EmbeddingGenerator(0, 1, Distribution.NORMAL, 1, 0))
        .getMessage().contains("dim: expected >= 1, got 0"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> new EmbeddingGenerator(4, 1, Distribution.CLUSTERED, 0, 0))
        .getMessage().contains("clusters: expected >= 1, got 0"));
    assertTrue(assertThrows(IllegalArgumentException.class,
        () -> new EmbeddingGenerator(4, 1, Distribution.CLUSTERED, 2, Double.NaN)).getMessage().contains("spread"));
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Distribution.parse("gaussian"))
        .getMessage().contains("got 'gaussian'"));
    assertEquals(List.of(Distribution.values()).size(), 3);
  }

  private static double[] moments(EmbeddingGenerator g, int rows) {
    double sum = 0;
    double sq = 0;
    long n = 0;
    for (long r = 0; r < rows; r++) {
      for (float x : g.row(r)) {
        sum += x;
        sq += (double) x * x;
        n++;
      }
    }
    double mean = sum / n;
    return new double[] {mean, sq / n - mean * mean};
  }
}
