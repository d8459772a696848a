package org.moespark.jobs;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** Scored data sets for tests, in the contract of {@code moe score}. */
final class ScoredData {
  static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("output", DataTypes.createArrayType(DataTypes.FloatType, false), false)
      .add("topk_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), true)
      .add("topk_weights", DataTypes.createArrayType(DataTypes.FloatType, false), true);

  private ScoredData() {}

  static Row row(long id, int[] ids, float[] weights) {
    return RowFactory.create(id, new float[] {0.5f, -0.5f}, ids, weights);
  }

  static Dataset<Row> of(SparkSession spark, List<Row> rows) {
    return spark.createDataFrame(rows, SCHEMA);
  }

  /**
   * Random routing with a skewed expert popularity (Zipf-like) and some correlated pairs:
   * softmax over E logits, top-k, renormalised (Mixtral-style). Deterministic for a seed.
   */
  static List<Row> skewed(int tokens, int experts, int k, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    double[] bias = new double[experts];
    for (int e = 0; e < experts; e++) {
      bias[e] = -1.2 * Math.log(1 + ((e * 7919L) % experts));
    }
    List<Row> rows = new ArrayList<>(tokens);
    for (int t = 0; t < tokens; t++) {
      double[] logit = new double[experts];
      int theme = rnd.nextInt(Math.max(1, experts / 4));
      for (int e = 0; e < experts; e++) {
        logit[e] = bias[e] + 1.5 * gaussian(rnd) + (e % Math.max(1, experts / 4) == theme ? 1.5 : 0);
      }
      int[] ids = new int[k];
      boolean[] used = new boolean[experts];
      for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
          if (!used[e] && (best < 0 || logit[e] > logit[best])) {
            best = e;
          }
        }
        used[best] = true;
        ids[j] = best;
      }
      double sum = 0;
      double[] w = new double[k];
      for (int j = 0; j < k; j++) {
        w[j] = Math.exp(logit[ids[j]] - logit[ids[0]]);
        sum += w[j];
      }
      float[] fw = new float[k];
      for (int j = 0; j < k; j++) {
        fw[j] = (float) (w[j] / sum);
      }
      rows.add(row(t, ids, fw));
    }
    return rows;
  }

  private static double gaussian(SplittableRandom r) {
    return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
  }
}
