package org.moespark.spark;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** Shared test data: a test model and a table of embeddings. */
final class Fixtures {
  static final int HIDDEN = 7;
  static final int EXPERTS = 5;
  static final int TOPK = 2;
  static final int ROWS = 53;
  static final int LAYER = 1;

  private static Path model;
  private static Path parquet;

  private Fixtures() {}

  static synchronized Path model() {
    if (model == null) {
      model = TestLoader.write(SparkTestSession.tmp().resolve("model-a"), HIDDEN, EXPERTS, TOPK, 42, false);
    }
    return model;
  }

  static String modelUri() {
    return model().toString();
  }

  /** Row {@code i}'s embedding (deterministic). */
  static float[] embedding(int i) {
    SplittableRandom r = new SplittableRandom(1000 + i);
    float[] x = new float[HIDDEN];
    for (int h = 0; h < HIDDEN; h++) {
      x[h] = (float) r.nextDouble(-2, 2);
    }
    return x;
  }

  static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.IntegerType, false)
      .add("emb", DataTypes.createArrayType(DataTypes.FloatType, true), true);

  /** The table as a local (row-based) DataFrame. */
  static Dataset<Row> rows(SparkSession spark) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < ROWS; i++) {
      rows.add(RowFactory.create(i, boxed(embedding(i))));
    }
    return spark.createDataFrame(rows, SCHEMA);
  }

  /** The same table written to Parquet (two files) and read back (vectorized reader). */
  static synchronized Dataset<Row> parquet(SparkSession spark) {
    if (parquet == null) {
      parquet = SparkTestSession.tmp().resolve("emb.parquet");
      rows(spark).repartition(2).write().parquet(parquet.toString());
    }
    return spark.read().parquet(parquet.toString());
  }

  /** Where {@link #parquet} wrote the table (written on first use). */
  static synchronized Path parquetPath() {
    parquet(SparkTestSession.get());
    return parquet;
  }

  static Float[] boxed(float[] x) {
    Float[] b = new Float[x.length];
    for (int i = 0; i < x.length; i++) {
      b[i] = x[i];
    }
    return b;
  }

  static float[] floats(List<Float> l) {
    float[] f = new float[l.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = l.get(i);
    }
    return f;
  }

  /** Reference: the scorer called directly on one row. */
  static BatchScorer.Scores expected(int i) {
    return TestLoader.reference(model(), LAYER).score(embedding(i), 1);
  }

  /** Every node of a physical plan, depth first. */
  static List<SparkPlan> nodes(SparkPlan p) {
    List<SparkPlan> out = new ArrayList<>();
    out.add(p);
    if (p instanceof org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanExec a) {
      out.addAll(nodes(a.executedPlan())); // AQE: the current (after an action: final) plan
    } else if (p instanceof org.apache.spark.sql.execution.adaptive.QueryStageExec q) {
      out.addAll(nodes(q.plan()));
    }
    for (SparkPlan c : Scala.list(p.children())) {
      out.addAll(nodes(c));
    }
    return out;
  }

  /**
   * Asserts that no physical node other than {@link MoeScoreExec} holds a {@code moe_score} call (so none
   * could evaluate it row at a time) and returns how many MoeScoreExec nodes the plan has.
   */
  static int assertBatchedOnly(Dataset<?> df) {
    SparkPlan plan = df.queryExecution().executedPlan();
    int execs = 0;
    for (SparkPlan p : nodes(plan)) {
      if (p instanceof MoeScoreExec) {
        execs++;
        continue;
      }
      for (var e : Scala.list(p.expressions())) {
        if (e.exists(x -> x instanceof MoeScoreExpr)) {
          throw new AssertionError(p.nodeName() + " holds a moe_score call " + e + " in\n" + plan);
        }
      }
    }
    return execs;
  }

  static MoeScoreExec exec(Dataset<?> df) {
    for (SparkPlan p : nodes(df.queryExecution().executedPlan())) {
      if (p instanceof MoeScoreExec e) {
        return e;
      }
    }
    throw new AssertionError("no MoeScoreExec in\n" + df.queryExecution().executedPlan());
  }

  static long metric(MoeScoreExec e, String name) {
    return e.metrics().apply(name).value();
  }
}
