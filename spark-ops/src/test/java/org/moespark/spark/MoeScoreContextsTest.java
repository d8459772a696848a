package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * moe_score in every operator context: each query must plan MoeScoreExec (a missed context would throw
 * from eval) and give the result computed here from the scorer called directly.
 */
class MoeScoreContextsTest {
  static SparkSession spark;
  static String m;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSession.get();
    Fixtures.parquet(spark).createOrReplaceTempView("emb_pq");
    m = "'" + Fixtures.modelUri() + "', 1";
  }

  static float y0(int id) {
    return Fixtures.expected(id).y()[0];
  }

  static int execCount(Dataset<?> df) {
    return Fixtures.assertBatchedOnly(df);
  }

  @Test
  void filter() {
    Dataset<Row> df = spark.sql("SELECT id FROM emb_pq WHERE moe_score(emb, " + m + ")[0] > 0 AND id < 40");
    List<Integer> got = new ArrayList<>();
    for (Row r : df.collectAsList()) {
      got.add(r.getInt(0));
    }
    got.sort(null);
    List<Integer> want = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      if (y0(i) > 0) {
        want.add(i);
      }
    }
    assertEquals(want, got);
    assertEquals(1, execCount(df));
    // the id predicate is evaluated before scoring: only 40 rows reach the scorer
    assertEquals(40, Fixtures.metric(Fixtures.exec(df), "numTokens"));
  }

  @Test
  void aggregateOverScoresAndGroupingByScore() {
    Dataset<Row> df = spark.sql("SELECT id % 3 AS k, sum(moe_score(emb, " + m + ")[1]) AS s, count(*) AS c "
        + "FROM emb_pq GROUP BY id % 3");
    Map<Integer, Double> want = new TreeMap<>();
    for (int i = 0; i < Fixtures.ROWS; i++) {
      want.merge(i % 3, (double) Fixtures.expected(i).y()[1], Double::sum);
    }
    Map<Integer, Double> got = new TreeMap<>();
    for (Row r : df.collectAsList()) {
      got.put(r.getInt(0), r.getDouble(1));
    }
    assertEquals(want.keySet(), got.keySet());
    for (int k : want.keySet()) {
      // sum order inside Spark's aggregate differs from this loop: compare with a tolerance
      assertEquals(want.get(k), got.get(k), 1e-5 * Math.max(1, Math.abs(want.get(k))), "group " + k);
    }
    assertEquals(1, execCount(df));

    Dataset<Row> g = spark.sql("SELECT moe_score(emb, " + m + ")[0] > 0 AS pos, count(*) FROM emb_pq "
        + "GROUP BY moe_score(emb, " + m + ")[0] > 0");
    Map<Boolean, Long> wantG = new HashMap<>();
    for (int i = 0; i < Fixtures.ROWS; i++) {
      wantG.merge(y0(i) > 0, 1L, Long::sum);
    }
    Map<Boolean, Long> gotG = new HashMap<>();
    for (Row r : g.collectAsList()) {
      gotG.put(r.getBoolean(0), r.getLong(1));
    }
    assertEquals(wantG, gotG);
    assertEquals(1, execCount(g));
    assertEquals(Fixtures.ROWS, Fixtures.metric(Fixtures.exec(g), "numTokens"), "identical calls scored once");
  }

  @Test
  void adaptiveExecutionPlansTheSameOperator() {
    spark.conf().set("spark.sql.adaptive.enabled", "true");
    try {
      Dataset<Row> df = spark.sql("SELECT a.id, moe_score(a.emb, " + m + ")[2] AS v FROM emb_pq a JOIN "
          + "(SELECT id % 7 AS k, count(*) AS c FROM emb_pq GROUP BY id % 7) b ON a.id % 7 = b.k "
          + "WHERE moe_score(a.emb, " + m + ")[0] > -100");
      List<Row> rows = df.collectAsList();
      assertEquals(Fixtures.ROWS, rows.size());
      for (Row r : rows) {
        assertEquals(Float.floatToRawIntBits(Fixtures.expected(r.getInt(0)).y()[2]), Float.floatToRawIntBits(r.getFloat(1)));
      }
      assertTrue(df.queryExecution().executedPlan() instanceof org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanExec);
      // the Filter's call and the Project's call are extracted (and scored) separately, as with Python UDFs
      assertEquals(2, execCount(df), df.queryExecution().executedPlan().toString());
    } finally {
      spark.conf().set("spark.sql.adaptive.enabled", "false");
    }
  }

  @Test
  void joinConditionOneSideAndBothSides() {
    spark.sql("SELECT id AS tid, CAST(id % 5 AS FLOAT) / 10 - 0.2 AS thr FROM emb_pq").createOrReplaceTempView("thr");
    Dataset<Row> df = spark.sql("SELECT a.id FROM emb_pq a JOIN thr b ON a.id = b.tid AND moe_score(a.emb, " + m
        + ")[0] > b.thr");
    List<Integer> got = ids(df);
    List<Integer> want = new ArrayList<>();
    for (int i = 0; i < Fixtures.ROWS; i++) {
      if (y0(i) > (float) (i % 5) / 10 - 0.2f) {
        want.add(i);
      }
    }
    assertEquals(want, got);
    assertEquals(1, execCount(df));

    // the call's input needs both sides: the condition is lifted above the inner join
    Dataset<Row> both = spark.sql("SELECT a.id FROM emb_pq a JOIN emb_pq b ON a.id = b.id "
        + "AND moe_score(IF(a.id % 2 = 0, a.emb, b.emb), " + m + ")[0] > 0");
    List<Integer> want2 = new ArrayList<>();
    for (int i = 0; i < Fixtures.ROWS; i++) {
      if (y0(i) > 0) {
        want2.add(i);
      }
    }
    assertEquals(want2, ids(both));
    assertEquals(1, execCount(both));
  }

  @Test
  void windowOrderedByScore() {
    Dataset<Row> df = spark.sql("SELECT id, row_number() OVER (ORDER BY moe_score(emb, " + m + ")[0], id) AS rn "
        + "FROM emb_pq");
    List<Integer> order = new ArrayList<>();
    for (int i = 0; i < Fixtures.ROWS; i++) {
      order.add(i);
    }
    order.sort((a, b) -> Float.compare(y0(a), y0(b)) != 0 ? Float.compare(y0(a), y0(b)) : Integer.compare(a, b));
    Map<Integer, Integer> got = new HashMap<>();
    for (Row r : df.collectAsList()) {
      got.put(r.getInt(0), r.getInt(1));
    }
    for (int rank = 0; rank < order.size(); rank++) {
      assertEquals(rank + 1, got.get(order.get(rank)), "row " + order.get(rank));
    }
    assertEquals(1, execCount(df));
  }

  @Test
  void generateExplodesScores() {
    Dataset<Row> df = spark.sql("SELECT id, pos, v FROM emb_pq LATERAL VIEW posexplode(moe_score(emb, " + m
        + ")) t AS pos, v WHERE id < 5");
    List<Row> rows = df.collectAsList();
    assertEquals(5 * Fixtures.HIDDEN, rows.size());
    for (Row r : rows) {
      assertEquals(Float.floatToRawIntBits(Fixtures.expected(r.getInt(0)).y()[r.getInt(1)]),
          Float.floatToRawIntBits(r.getFloat(2)));
    }
    assertEquals(1, execCount(df));
  }

  @Test
  void nestedAndComputedArguments() {
    // the argument is an expression (materialized below MoeEval); the outer call scores the inner's output
    Dataset<Row> df = spark.sql("SELECT id, moe_score(moe_score(transform(emb, x -> x * 2), " + m + "), " + m
        + ") AS y FROM emb_pq WHERE id < 6");
    TestScorer ref = TestLoader.reference(Fixtures.model(), 1);
    for (Row r : df.collectAsList()) {
      float[] x = Fixtures.embedding(r.getInt(0));
      for (int h = 0; h < x.length; h++) {
        x[h] *= 2;
      }
      float[] want = ref.score(ref.score(x, 1).y(), 1).y();
      assertArrayEquals(want, Fixtures.floats(r.getList(1)), 0f);
    }
    assertEquals(2, execCount(df));
    LogicalPlan opt = df.queryExecution().optimizedPlan();
    assertTrue(opt.toString().contains("MoeEval"), opt.toString());
  }

  @Test
  void routedStruct() {
    Dataset<Row> df = spark.sql("SELECT id, r.output, r.topk_ids, r.topk_weights FROM (SELECT id, "
        + "moe_score_routed(emb, " + m + ") AS r FROM emb_pq)");
    List<Row> rows = df.collectAsList();
    assertEquals(Fixtures.ROWS, rows.size());
    for (Row r : rows) {
      BatchScorer.Scores s = Fixtures.expected(r.getInt(0));
      assertArrayEquals(s.y(), Fixtures.floats(r.getList(1)), 0f);
      List<Integer> ids = r.getList(2);
      int[] gotIds = ids.stream().mapToInt(Integer::intValue).toArray();
      assertArrayEquals(s.topkIds(), gotIds);
      assertArrayEquals(s.topkWeights(), Fixtures.floats(r.getList(3)), 0f);
    }
    assertEquals(1, execCount(df));
  }

  static List<Integer> ids(Dataset<Row> df) {
    List<Integer> got = new ArrayList<>();
    for (Row r : df.collectAsList()) {
      got.add(r.getInt(0));
    }
    got.sort(null);
    return got;
  }
}
