package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.ColumnarToRowExec;
import org.apache.spark.sql.execution.FileSourceScanExec;
import org.apache.spark.sql.execution.RowToColumnarExec;
import org.apache.spark.sql.execution.SparkPlan;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class MoeScoreSqlTest {
  static SparkSession spark;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSession.get();
    Fixtures.parquet(spark).createOrReplaceTempView("emb_pq");
    Fixtures.rows(spark).createOrReplaceTempView("emb_rows");
  }

  static void assertScores(List<Row> rows, int idCol, int outCol) {
    assertEquals(Fixtures.ROWS, rows.size());
    for (Row r : rows) {
      int id = r.getInt(idCol);
      float[] got = Fixtures.floats(r.getList(outCol));
      assertArrayEquals(Fixtures.expected(id).y(), got, 0f, "row " + id); // delta 0: bit-equal incl. -0
      for (int h = 0; h < got.length; h++) {
        assertEquals(Float.floatToRawIntBits(Fixtures.expected(id).y()[h]), Float.floatToRawIntBits(got[h]));
      }
    }
  }

  @Test
  void sqlOnParquetEqualsDirectScorerAndReadsColumnar() {
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, '" + Fixtures.modelUri() + "', 1) AS y FROM emb_pq");
    assertScores(df.collectAsList(), 0, 1);
    MoeScoreExec e = Fixtures.exec(df);
    SparkPlan child = e.child();
    assertTrue(child instanceof FileSourceScanExec, "child of MoeScoreExec must be the Parquet scan, got\n"
        + df.queryExecution().executedPlan());
    assertTrue(child.supportsColumnar());
    assertEquals(Fixtures.ROWS, Fixtures.metric(e, "numTokens"));
    assertEquals(Fixtures.ROWS, Fixtures.metric(e, "numOutputRows"));
    assertEquals(Fixtures.metric(e, "numBatches"), Fixtures.metric(e, "numCpuBatches"));
    assertEquals(0, Fixtures.metric(e, "numGpuBatches"));
    assertTrue(df.queryExecution().executedPlan().toString().contains("MoeScoreExec"));
  }

  @Test
  void offHeapParquetVectors() {
    spark.conf().set("spark.sql.columnVector.offheap.enabled", "true");
    try {
      Dataset<Row> df = spark.read().parquet(Fixtures.parquetPath().toString())
          .selectExpr("id", "moe_score(emb, '" + Fixtures.modelUri() + "', 1)");
      assertScores(df.collectAsList(), 0, 1);
      assertTrue(Fixtures.exec(df).child() instanceof FileSourceScanExec);
    } finally {
      spark.conf().unset("spark.sql.columnVector.offheap.enabled");
    }
  }

  @Test
  void modelIsLoadedOncePerJvm() {
    String sql = "SELECT id, moe_score(emb, '" + Fixtures.modelUri() + "', 1) AS y FROM emb_pq";
    spark.sql(sql).collectAsList(); // loaded here or by an earlier test
    int loads = TestLoader.LOADS.get();
    Dataset<Row> again = spark.sql(sql);
    assertScores(again.collectAsList(), 0, 1);
    assertEquals(loads, TestLoader.LOADS.get(), "cached: no second load");
    assertEquals(0, Fixtures.metric(Fixtures.exec(again), "modelLoadTime"));
  }

  @Test
  void rowInputGoesThroughRowToColumnar() {
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, '" + Fixtures.modelUri() + "', 1) AS y FROM emb_rows");
    assertScores(df.collectAsList(), 0, 1);
    MoeScoreExec e = Fixtures.exec(df);
    boolean r2c = false;
    for (SparkPlan p : Fixtures.nodes(e.child())) {
      r2c |= p instanceof RowToColumnarExec;
    }
    assertTrue(r2c, "expected RowToColumnar below MoeScoreExec:\n" + df.queryExecution().executedPlan());
    // above it, MoeRowsExec (MoeRowsRule) in place of Spark's ColumnarToRow, converting only id and y
    MoeRowsExec rows = null;
    for (SparkPlan p : Fixtures.nodes(df.queryExecution().executedPlan())) {
      assertFalse(p instanceof ColumnarToRowExec c && c.child() instanceof MoeScoreExec,
          "Spark's ColumnarToRow above MoeScoreExec:\n" + df.queryExecution().executedPlan());
      if (p instanceof MoeRowsExec r) {
        rows = r;
      }
    }
    assertTrue(rows != null, "expected MoeRows above MoeScoreExec:\n" + df.queryExecution().executedPlan());
    List<String> converted = Scala.list(rows.output()).stream().map(a -> a.name()).toList();
    assertEquals(2, converted.size(), "id and the score, not the embedding: " + converted);
    assertEquals("id", converted.get(0));
    assertEquals(rows.metrics().apply("numInputBatches").value(), rows.metrics().apply("numBulkBatches").value(),
        "every batch's scores copied in bulk");
    assertTrue(rows.metrics().apply("numInputBatches").value() > 0);
  }

  @Test
  void expressionNeverEvaluatesRowWise() {
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, '" + Fixtures.modelUri() + "', 1) AS y FROM emb_pq");
    MoeScoreExpr call = Scala.list(Fixtures.exec(df).calls()).get(0);
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> call.eval(null));
    assertTrue(e.getMessage().contains("about to be evaluated one row at a time"), e.getMessage());
    assertThrows(IllegalStateException.class, () -> call.genCode(
        new org.apache.spark.sql.catalyst.expressions.codegen.CodegenContext()));
    assertFalse(call.foldable());
    assertEquals(1, Fixtures.assertBatchedOnly(df));
    String explain = df.queryExecution().explainString(org.apache.spark.sql.execution.SimpleMode$.MODULE$);
    assertTrue(explain.contains("MoeScoreExec"), explain);
    assertFalse(explain.contains("!MoeScoreExec"), "no missing input flagged:\n" + explain);
    assertTrue(Fixtures.exec(df).missingInput().isEmpty());
  }

  @Test
  void modelShippedWithAddFileIsFoundBySparkFilesName() {
    // same config (and so the same test scorer) as Fixtures.model(), under another name
    java.nio.file.Path dir = TestLoader.write(SparkTestSession.tmp().resolve("shipped").resolve("model-shipped"),
        Fixtures.HIDDEN, Fixtures.EXPERTS, Fixtures.TOPK, 42, false);
    spark.sparkContext().addFile(dir.toString(), true);
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, 'model-shipped', 1) AS y FROM emb_pq");
    assertScores(df.collectAsList(), 0, 1);
  }

  @Test
  void installOnAnExtendedSessionIsANoOp() {
    var cs = (org.apache.spark.sql.classic.SparkSession) spark;
    assertTrue(MoeExtensions.isInstalled(spark));
    int rules = cs.experimental().extraOptimizations().size();
    int strategies = cs.experimental().extraStrategies().size();
    MoeExtensions.install(spark);
    MoeExtensions.install(spark);
    assertEquals(rules, cs.experimental().extraOptimizations().size());
    assertEquals(strategies, cs.experimental().extraStrategies().size());
    assertThrows(IllegalArgumentException.class, () -> MoeExtensions.install(null));
  }

  @Test
  void dataFrameApiEqualsSql() {
    Dataset<Row> df = Fixtures.parquet(spark).select(org.apache.spark.sql.functions.col("id"),
        org.apache.spark.sql.functions.call_function("moe_score", org.apache.spark.sql.functions.col("emb"),
            org.apache.spark.sql.functions.lit(Fixtures.modelUri()), org.apache.spark.sql.functions.lit(1)));
    assertScores(df.collectAsList(), 0, 1);
    assertFalse(Fixtures.nodes(df.queryExecution().executedPlan()).isEmpty());
    Fixtures.exec(df);
  }
}
