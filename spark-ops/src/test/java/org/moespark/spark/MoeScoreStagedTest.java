package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

/**
 * The operator's staged path (the one a GPU scorer takes: rows packed from the column vectors into a
 * staging slot, two slots alternating, y unpacked from the slot into off-heap result vectors, then
 * {@code MoeRows}) on the CPU, through {@link HostStaging}: with bad rows (null, NaN, wrong width) under
 * every policy, batchRows 7 so one input batch runs as many chunks through both slots, {@code array<float>}
 * and float32 {@code binary} input, on- and off-heap input vectors. Every result equals bit for bit the
 * scorer on that row alone (its rows are independent), and the SQL metrics count the chunks.
 */
class MoeScoreStagedTest {
  static final int H = 16;
  static final int N = 61;
  static final int CHUNK = 7;
  static final int[] BAD = {5, 17, 30};
  static SparkSession spark;
  static String uri;
  static TestScorer ref;
  static float[][] emb = new float[N][];

  @BeforeAll
  static void setUp() {
    spark = SparkTestSession.get();
    Path model = TestLoader.write(SparkTestSession.tmp().resolve("model-staged"), H, 6, 2, 5, false, true);
    uri = model.toString();
    ref = TestLoader.reference(model, 1);
    for (int i = 0; i < N; i++) {
      emb[i] = MoeLayerScoringTest.embedding(i, H);
    }
    List<Row> arrays = rows(emb, H, false);
    List<Row> binaries = rows(emb, H, true);
    StructType arr = new StructType().add("id", DataTypes.IntegerType, false)
        .add("embedding", DataTypes.createArrayType(DataTypes.FloatType, true), true);
    StructType bin = new StructType().add("id", DataTypes.IntegerType, false).add("embedding", DataTypes.BinaryType, true);
    // one file each, in id order: one input batch, so the chunks are the good rows in id order, 7 at a time
    for (Object[] t : new Object[][] {{arrays, arr, "staged_arr"}, {binaries, bin, "staged_bin"}}) {
      @SuppressWarnings("unchecked")
      List<Row> rows = (List<Row>) t[0];
      Path pq = SparkTestSession.tmp().resolve(t[2] + ".parquet");
      spark.createDataFrame(rows, (StructType) t[1]).coalesce(1).write().mode("overwrite").parquet(pq.toString());
      spark.read().parquet(pq.toString()).createOrReplaceTempView((String) t[2]);
    }
  }

  static boolean bad(int i) {
    return Arrays.stream(BAD).anyMatch(b -> b == i);
  }

  /**
   * Rows {@code (id int, embedding)} of {@code emb} with the {@link #BAD} rows spoiled: null, a NaN at
   * element 3, one element short; the embedding as {@code array<float>} (boxed) or float32 LE bytes.
   */
  static List<Row> rows(float[][] emb, int hidden, boolean binary) {
    List<Row> out = new ArrayList<>();
    for (int i = 0; i < emb.length; i++) {
      float[] e = emb[i];
      if (i == BAD[1]) {
        e = e.clone();
        e[3] = Float.NaN;
      } else if (i == BAD[2]) {
        e = Arrays.copyOf(e, hidden - 1);
      }
      Object v;
      if (i == BAD[0]) {
        v = null;
      } else if (binary) {
        ByteBuffer b = ByteBuffer.allocate(4 * e.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(e);
        v = b.array();
      } else {
        v = Fixtures.boxed(e);
      }
      out.add(RowFactory.create(i, v));
    }
    return out;
  }

  static Dataset<Row> query(String view, String badRows) {
    return spark.sql("SELECT id, moe_score_routed(embedding, '" + uri + "', 1, map('batchRows', '" + CHUNK
        + "', 'badRows', '" + badRows + "')) AS r FROM " + view);
  }

  @Test
  void stagedPathEqualsTheScorerBitForBit() {
    int before = TestScorer.STAGINGS.get();
    for (String offHeap : new String[] {"false", "true"}) {
      spark.conf().set("spark.sql.columnVector.offheap.enabled", offHeap);
      try {
        for (String view : new String[] {"staged_arr", "staged_bin"}) {
          for (String policy : new String[] {"null", "skip"}) {
            String what = view + ", badRows=" + policy + ", off-heap input " + offHeap;
            Dataset<Row> df = query(view, policy);
            List<Row> rows = df.collectAsList();
            assertEquals(policy.equals("skip") ? N - BAD.length : N, rows.size(), what + ": rows");
            for (Row row : rows) {
              int id = row.getInt(0);
              if (bad(id)) {
                assertTrue(row.isNullAt(1), what + ": bad row " + id + " must be null");
                continue;
              }
              Row r = row.getStruct(1);
              BatchScorer.Scores want = ref.score(emb[id], 1);
              Tolerance.assertBitEqual(Fixtures.floats(r.getList(0)), want.y(), what + ", row " + id + " y");
              List<Integer> ids = r.getList(1);
              assertArrayEquals(want.topkIds(), ids.stream().mapToInt(Integer::intValue).toArray(), what + ", row " + id);
              Tolerance.assertBitEqual(Fixtures.floats(r.getList(2)), want.topkWeights(), what + ", row " + id + " w");
            }
            MoeScoreExec e = Fixtures.exec(df);
            long chunks = (N - BAD.length + CHUNK - 1) / CHUNK;
            assertEquals(chunks, Fixtures.metric(e, "numBatches"), what + ": chunks");
            assertEquals(chunks, Fixtures.metric(e, "numCpuBatches"), what + ": chunks on the CPU");
            assertEquals(0, Fixtures.metric(e, "numGpuBatches"), what + ": no GPU");
            assertEquals(N - BAD.length, Fixtures.metric(e, "numTokens"), what + ": tokens");
            assertEquals(BAD.length, Fixtures.metric(e, "numBadRows"), what + ": bad rows");
            assertTrue(Fixtures.metric(e, "computeTime") > 0, what + ": compute time");
          }
        }
      } finally {
        spark.conf().unset("spark.sql.columnVector.offheap.enabled");
      }
    }
    int made = TestScorer.STAGINGS.get() - before;
    // the staged path ran (a staging was made), and its stagings were pooled: 8 queries of one task each
    assertTrue(made >= 1 && made <= 2, made + " stagings made for 8 single-task queries");
  }

  @Test
  void errorPolicyNamesTheFirstBadRow() {
    Exception e = assertThrows(Exception.class, () -> query("staged_arr", "error").collectAsList());
    Throwable t = e;
    while (t.getCause() != null && !(t instanceof IllegalArgumentException)) {
      t = t.getCause();
    }
    assertTrue(String.valueOf(t.getMessage()).contains("bad input row " + BAD[0]), String.valueOf(t.getMessage()));
    assertTrue(String.valueOf(t.getMessage()).contains("the embedding is null"), String.valueOf(t.getMessage()));
  }

  @Test
  void plainScoreColumnThroughStaging() {
    List<Row> rows = spark.sql("SELECT id, moe_score(embedding, '" + uri + "', 1, map('batchRows', '" + CHUNK
        + "', 'badRows', 'skip')) AS y FROM staged_arr ORDER BY id").collectAsList();
    assertEquals(N - BAD.length, rows.size());
    for (Row row : rows) {
      int id = row.getInt(0);
      Tolerance.assertBitEqual(Fixtures.floats(row.getList(1)), ref.score(emb[id], 1).y(), "row " + id);
    }
  }
}
