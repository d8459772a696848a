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
  void rowInputGoesThroughRowToColumnar() {
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, '" + Fixtures.modelUri() + "', 1) AS y FROM emb_rows");
    assertScores(df.collectAsList(), 0, 1);
    MoeScoreExec e = Fixtures.exec(df);
    boolean r2c = false;
    for (SparkPlan p : Fixtures.nodes(e.child())) {
      r2c |= p instanceof RowToColumnarExec;
    }
    assertTrue(r2c, "expected RowToColumnar below MoeScoreExec:\n" + df.queryExecution().executedPlan());
    boolean c2r = false;
    for (SparkPlan p : Fixtures.nodes(df.queryExecution().executedPlan())) {
      c2r |= p instanceof ColumnarToRowExec;
    }
    assertTrue(c2r);
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
