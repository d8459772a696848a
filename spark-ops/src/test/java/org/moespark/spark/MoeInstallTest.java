package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.junit.jupiter.api.Test;
import scala.Option;

/**
 * {@link MoeExtensions#install} on a session that was started without {@code spark.sql.extensions} (the
 * notebook case): before, the function does not exist; after, it is planned by the batched operator.
 * The session is built with an empty extension set on the shared SparkContext.
 */
class MoeInstallTest {
  static SparkSession bareSession() {
    var base = (org.apache.spark.sql.classic.SparkSession) SparkTestSession.get();
    return new org.apache.spark.sql.classic.SparkSession(base.sparkContext(), Option.apply(base.sharedState()),
        Option.empty(), new SparkSessionExtensions(), scala.collection.immutable.Map$.MODULE$.empty(),
        scala.collection.immutable.Map$.MODULE$.empty());
  }

  @Test
  void installOnABareSession() {
    SparkSession s = bareSession();
    s.read().parquet(Fixtures.parquetPath().toString()).createOrReplaceTempView("emb_bare");
    String sql = "SELECT id, moe_score(emb, '" + Fixtures.modelUri() + "', 1) AS y FROM emb_bare";
    assertFalse(MoeExtensions.isInstalled(s));
    Exception missing = assertThrows(Exception.class, () -> s.sql(sql).collectAsList());
    assertTrue(String.valueOf(missing.getMessage()).contains("moe_score"), missing.getMessage());

    MoeExtensions.install(s);
    assertTrue(MoeExtensions.isInstalled(s));
    Dataset<Row> df = s.sql(sql);
    MoeScoreSqlTest.assertScores(df.collectAsList(), 0, 1);
    assertEquals(1, Fixtures.assertBatchedOnly(df));
    var cs = (org.apache.spark.sql.classic.SparkSession) s;
    int rules = cs.experimental().extraOptimizations().size();
    MoeExtensions.install(s);
    assertEquals(rules, cs.experimental().extraOptimizations().size(), "idempotent");
    // a call in a Filter and an Aggregate on the installed (experimental-hooks) path
    List<Row> agg = s.sql("SELECT count(*) FROM emb_bare WHERE moe_score(emb, '" + Fixtures.modelUri()
        + "', 1)[0] > 0").collectAsList();
    long want = 0;
    for (int i = 0; i < Fixtures.ROWS; i++) {
      want += Fixtures.expected(i).y()[0] > 0 ? 1 : 0;
    }
    assertEquals(want, agg.get(0).getLong(0));
  }

  @Test
  void transformerInstallsTheExtensionItself() {
    SparkSession s = bareSession();
    Dataset<Row> in = s.read().parquet(Fixtures.parquetPath().toString());
    Dataset<Row> out = new MoeScorer().setInputCol("emb").setOutputCol("y").setModelPath(Fixtures.modelUri())
        .setLayer(1).transform(in);
    assertTrue(MoeExtensions.isInstalled(s));
    MoeScoreSqlTest.assertScores(out.select("id", "y").collectAsList(), 0, 1);
  }
}
