package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Input encodings, batching, and the three bad-row policies. */
class MoeScoreInputsTest {
  static SparkSession spark;
  static String m;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSession.get();
    m = "'" + Fixtures.modelUri() + "', 1";
    Fixtures.rows(spark).coalesce(1).createOrReplaceTempView("emb_rows_1p");
  }

  @AfterEach
  void resetConf() {
    spark.conf().unset(MoeConf.BAD_ROWS);
    spark.conf().unset(MoeConf.BATCH_ROWS);
  }

  @Test
  void doubleArrayAndLittleEndianBinaryInputs() {
    StructType schema = new StructType().add("id", DataTypes.IntegerType)
        .add("d", DataTypes.createArrayType(DataTypes.DoubleType))
        .add("b", DataTypes.BinaryType);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      float[] x = Fixtures.embedding(i);
      Double[] d = new Double[x.length];
      ByteBuffer bb = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
      for (int h = 0; h < x.length; h++) {
        d[h] = (double) x[h]; // exact: the float widened
        bb.putFloat(x[h]);
      }
      rows.add(RowFactory.create(i, d, bb.array()));
    }
    spark.createDataFrame(rows, schema).createOrReplaceTempView("enc");
    Dataset<Row> df = spark.sql("SELECT id, moe_score(d, " + m + "), moe_score(b, " + m + ") FROM enc");
    List<Row> got = df.collectAsList();
    assertEquals(20, got.size());
    for (Row r : got) {
      float[] want = Fixtures.expected(r.getInt(0)).y();
      assertArrayEquals(want, Fixtures.floats(r.getList(1)), 0f);
      assertArrayEquals(want, Fixtures.floats(r.getList(2)), 0f);
    }
  }

  @Test
  void wrongInputTypeIsAnAnalysisError() {
    Exception e = assertThrows(Exception.class,
        () -> spark.sql("SELECT moe_score(array(1, 2), " + m + ")").collectAsList());
    assertTrue(e.getMessage().contains("embedding must be array<float>, array<double> or binary"), e.getMessage());
    Exception e2 = assertThrows(Exception.class,
        () -> spark.sql("SELECT moe_score(emb, 'x') FROM (SELECT array(1.0f) AS emb)").collectAsList());
    assertTrue(e2.getMessage().contains("takes 3 or 4 arguments, got 2"), e2.getMessage());
  }

  @Test
  void batchRowsSplitsInputBatches() {
    spark.conf().set(MoeConf.BATCH_ROWS, "4");
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, " + m + ") FROM emb_rows_1p");
    // one partition of 53 rows in one input batch → ceil(53 / 4) = 14 scorer calls
    List<Row> got = df.collectAsList();
    assertEquals(Fixtures.ROWS, got.size());
    for (Row r : got) {
      assertArrayEquals(Fixtures.expected(r.getInt(0)).y(), Fixtures.floats(r.getList(1)), 0f);
    }
    MoeScoreExec e = Fixtures.exec(df);
    assertEquals(14, Fixtures.metric(e, "numBatches"));
    assertEquals(4, e.settings().get(0).batchRows());
    // per-call option beats the session conf
    Dataset<Row> df2 = spark.sql("SELECT moe_score(emb, " + m + ", map('batchRows', '10')) FROM emb_rows_1p");
    assertEquals(Fixtures.ROWS, df2.collectAsList().size());
    assertEquals(6, Fixtures.metric(Fixtures.exec(df2), "numBatches"));
  }

  /** Rows 0..9; row 2 null, row 4 too short, row 6 has a NaN, row 8 an Inf. */
  static void badTable() {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      Float[] x = Fixtures.boxed(Fixtures.embedding(i));
      if (i == 4) {
        x = new Float[] {1f, 2f, 3f};
      } else if (i == 6) {
        x[3] = Float.NaN;
      } else if (i == 8) {
        x[0] = Float.NEGATIVE_INFINITY;
      }
      rows.add(RowFactory.create(i, i == 2 ? null : x));
    }
    spark.createDataFrame(rows, Fixtures.SCHEMA).coalesce(1).createOrReplaceTempView("bad");
  }

  @Test
  void badRowsErrorNamesTheRow() {
    badTable();
    Exception e = assertThrows(Exception.class,
        () -> spark.sql("SELECT id, moe_score(emb, " + m + ") FROM bad").collectAsList());
    String msg = String.valueOf(e.getMessage());
    assertTrue(msg.contains("bad input row 2 of partition 0") && msg.contains("the embedding is null"), msg);
    assertTrue(msg.contains(MoeConf.BAD_ROWS + "=error"), msg);

    Exception e2 = assertThrows(Exception.class,
        () -> spark.sql("SELECT id, moe_score(emb, " + m + ") FROM bad WHERE id > 2").collectAsList());
    String msg2 = String.valueOf(e2.getMessage());
    assertTrue(msg2.contains("array<float> of length 3, expected hidden_size 7"), msg2);
    Exception e3 = assertThrows(Exception.class,
        () -> spark.sql("SELECT id, moe_score(emb, " + m + ") FROM bad WHERE id = 6").collectAsList());
    assertTrue(String.valueOf(e3.getMessage()).contains("element 3 is NaN"), e3.getMessage());
  }

  @Test
  void badRowsSkipDropsAndCounts() {
    badTable();
    spark.conf().set(MoeConf.BAD_ROWS, "skip");
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, " + m + ") FROM bad");
    List<Row> got = df.collectAsList();
    List<Integer> ids = new ArrayList<>();
    for (Row r : got) {
      ids.add(r.getInt(0));
      assertArrayEquals(Fixtures.expected(r.getInt(0)).y(), Fixtures.floats(r.getList(1)), 0f);
    }
    ids.sort(null);
    assertEquals(List.of(0, 1, 3, 5, 7, 9), ids);
    MoeScoreExec e = Fixtures.exec(df);
    assertEquals(4, Fixtures.metric(e, "numBadRows"));
    assertEquals(4, Fixtures.metric(e, "numSkippedRows"));
    assertEquals(10, Fixtures.metric(e, "numInputRows"));
    assertEquals(6, Fixtures.metric(e, "numOutputRows"));
    assertEquals(6, Fixtures.metric(e, "numTokens"));
  }

  @Test
  void badRowsNullKeepsRowsWithNullResult() {
    badTable();
    Dataset<Row> df = spark.sql("SELECT id, moe_score(emb, " + m + ", map('badRows', 'null')) AS y, "
        + "moe_score_routed(emb, " + m + ", map('badRows', 'null')) AS r FROM bad");
    List<Row> got = df.collectAsList();
    assertEquals(10, got.size());
    for (Row r : got) {
      int id = r.getInt(0);
      if (id == 2 || id == 4 || id == 6 || id == 8) {
        assertNull(r.get(1), "row " + id);
        assertNull(r.get(2), "row " + id);
      } else {
        assertArrayEquals(Fixtures.expected(id).y(), Fixtures.floats(r.getList(1)), 0f);
        assertArrayEquals(Fixtures.expected(id).topkIds(),
            r.getStruct(2).<Integer>getList(1).stream().mapToInt(Integer::intValue).toArray());
      }
    }
    MoeScoreExec e = Fixtures.exec(df);
    assertEquals(8, Fixtures.metric(e, "numNulledRows"), "4 rows × 2 calls");
    assertEquals(10, Fixtures.metric(e, "numOutputRows"));
  }

  @Test
  void unknownOptionOrPolicyFailsAtPlanning() {
    Exception e = assertThrows(Exception.class, () -> spark.sql("SELECT moe_score(emb, " + m
        + ", map('bad_rows', 'skip')) FROM emb_rows_1p").collectAsList());
    assertTrue(e.getMessage().contains("unknown key 'bad_rows'"), e.getMessage());
    spark.conf().set(MoeConf.BAD_ROWS, "drop");
    Exception e2 = assertThrows(Exception.class,
        () -> spark.sql("SELECT moe_score(emb, " + m + ") FROM emb_rows_1p").collectAsList());
    assertTrue(e2.getMessage().contains("badRows must be one of error|skip|null, got 'drop'"), e2.getMessage());
    spark.conf().unset(MoeConf.BAD_ROWS);
    Exception e3 = assertThrows(Exception.class, () -> spark.sql("SELECT moe_score(emb, " + m
        + ", map('gemm', 'fp16')) FROM emb_rows_1p").collectAsList());
    assertTrue(e3.getMessage().contains("spark.moespark.gemm must be bf16, fp8, mxfp4 or nvfp4, got 'fp16'"),
        e3.getMessage());
  }

  @Test
  void gemmReachesTheLoaderFromTheCallOrTheSession() {
    ModelCache.clear();
    spark.sql("SELECT moe_score(emb, " + m + ", map('gemm', ' MXFP4 ')) FROM emb_rows_1p").collectAsList();
    assertEquals("mxfp4", TestLoader.LAST.get().gemm());
    ModelCache.clear();
    spark.conf().set(MoeConf.GEMM, "fp8");
    try {
      spark.sql("SELECT moe_score(emb, " + m + ") FROM emb_rows_1p").collectAsList();
      assertEquals("fp8", TestLoader.LAST.get().gemm());
    } finally {
      spark.conf().unset(MoeConf.GEMM);
    }
    ModelCache.clear();
    spark.sql("SELECT moe_score(emb, " + m + ") FROM emb_rows_1p").collectAsList();
    assertNull(TestLoader.LAST.get().gemm(), "unset: the executor's default");
  }
}
