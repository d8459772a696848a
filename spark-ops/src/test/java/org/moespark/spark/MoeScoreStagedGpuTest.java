package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.layer.Backend;
import org.moespark.layer.Compute;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.layer.MoeLayerGpu;
import org.moespark.testing.Tolerance;

/**
 * The operator's GPU path (pinned staging, forwardDevice, bulk unpack) on the GPU machine: with bad rows
 * (null, NaN, wrong width) under {@code null} and {@code skip}, and batchRows 7 so that one input batch
 * runs as many chunks through both staging slots, every result equals bit for bit what
 * {@link MoeLayerGpu#forwardDevice} gives on the same chunks of good rows; the SQL metrics say the GPU
 * ran and carry measured copy and compute times.
 */
@Tag("gpu")
class MoeScoreStagedGpuTest {
  static final int N = MoeScoreStagedTest.N;
  static final int CHUNK = MoeScoreStagedTest.CHUNK;
  static final int[] BAD = MoeScoreStagedTest.BAD;
  static SparkSession spark;
  static String uri;
  static int hidden;
  static float[][] emb = new float[N][];

  @BeforeAll
  static void setUp() {
    assumeTrue(NativeLibrary.isAvailable(), () -> "no GPU: " + NativeLibrary.unavailableReason());
    Path model = HfModels.fixture("qwen2_moe_fp32");
    uri = model.toString();
    spark = SparkTestSession.get();
    spark.conf().set(MoeConf.LOADER, MoeConf.DEFAULT_LOADER);
    try (MoeLayer l = MoeLayer.load(model, 0, new LayerOptions(Backend.CPU, Compute.FP32))) {
      hidden = l.hiddenSize();
    }
    for (int i = 0; i < N; i++) {
      emb[i] = MoeLayerScoringTest.embedding(i, hidden);
    }
    List<Row> rows = MoeScoreStagedTest.rows(emb, hidden, false);
    StructType schema = new StructType().add("id", DataTypes.IntegerType, false)
        .add("embedding", DataTypes.createArrayType(DataTypes.FloatType, true), true);
    Path pq = SparkTestSession.tmp().resolve("staged-gpu.parquet");
    // one file in id order: one input batch, so the chunks are the good rows in id order, 7 at a time
    spark.createDataFrame(rows, schema).coalesce(1).write().mode("overwrite").parquet(pq.toString());
    spark.read().parquet(pq.toString()).createOrReplaceTempView("staged_emb");
  }

  @AfterAll
  static void tearDown() {
    if (spark != null) {
      spark.conf().set(MoeConf.LOADER, TestLoader.class.getName());
    }
  }

  static boolean bad(int i) {
    return MoeScoreStagedTest.bad(i);
  }

  /** forwardDevice on the good rows, CHUNK at a time: id → (y, ids, weights). */
  static Map<Integer, Object[]> reference() {
    Map<Integer, Object[]> out = new HashMap<>();
    List<Integer> good = new ArrayList<>();
    for (int i = 0; i < N; i++) {
      if (!bad(i)) {
        good.add(i);
      }
    }
    try (MoeLayer l = MoeLayer.load(Path.of(uri), 0, new LayerOptions(Backend.GPU, Compute.FP32))) {
      MoeLayerGpu g = l.gpu();
      int k = g.topK();
      for (int f = 0; f < good.size(); f += CHUNK) {
        int n = Math.min(CHUNK, good.size() - f);
        float[] x = new float[n * hidden];
        for (int j = 0; j < n; j++) {
          System.arraycopy(emb[good.get(f + j)], 0, x, j * hidden, hidden);
        }
        try (DeviceBuffer xd = g.allocate(4L * x.length, "x"); DeviceBuffer yd = g.allocate(4L * x.length, "y")) {
          xd.copyFrom(x);
          MoeLayer.Output o = g.forwardDevice(xd, n, yd);
          float[] y = yd.toFloats(x.length);
          for (int j = 0; j < n; j++) {
            out.put(good.get(f + j), new Object[] {Arrays.copyOfRange(y, j * hidden, (j + 1) * hidden),
                Arrays.copyOfRange(o.topkIds(), j * k, (j + 1) * k), Arrays.copyOfRange(o.topkWeights(), j * k, (j + 1) * k)});
          }
        }
      }
    }
    return out;
  }

  static Dataset<Row> query(String badRows) {
    return spark.sql("SELECT id, moe_score_routed(embedding, '" + uri + "', 0, map('backend', 'gpu', 'batchRows', '"
        + CHUNK + "', 'badRows', '" + badRows + "')) AS r FROM staged_emb");
  }

  @Test
  void stagedGpuPathEqualsForwardDeviceBitForBit() {
    Map<Integer, Object[]> want = reference();
    for (String policy : new String[] {"null", "skip"}) {
      Dataset<Row> df = query(policy);
      List<Row> rows = df.collectAsList();
      assertEquals(policy.equals("skip") ? N - BAD.length : N, rows.size(), policy + ": rows");
      for (Row row : rows) {
        int id = row.getInt(0);
        if (bad(id)) {
          assertTrue(row.isNullAt(1), policy + ": bad row " + id + " must be null");
          continue;
        }
        Row r = row.getStruct(1);
        Object[] w = want.get(id);
        Tolerance.assertBitEqual(Fixtures.floats(r.getList(0)), (float[]) w[0], policy + " row " + id + " y");
        List<Integer> ids = r.getList(1);
        assertArrayEquals((int[]) w[1], ids.stream().mapToInt(Integer::intValue).toArray(), policy + " row " + id);
        Tolerance.assertBitEqual(Fixtures.floats(r.getList(2)), (float[]) w[2], policy + " row " + id + " weights");
      }
      MoeScoreExec e = Fixtures.exec(df);
      long batches = (N - BAD.length + CHUNK - 1) / CHUNK;
      assertEquals(batches, Fixtures.metric(e, "numBatches"), policy + ": scorer batches");
      assertEquals(batches, Fixtures.metric(e, "numGpuBatches"), policy + ": GPU batches");
      assertEquals(0, Fixtures.metric(e, "numCpuBatches"), policy + ": CPU batches");
      assertEquals(N - BAD.length, Fixtures.metric(e, "numTokens"), policy + ": tokens");
      assertEquals(BAD.length, Fixtures.metric(e, "numBadRows"), policy + ": bad rows");
      assertTrue(Fixtures.metric(e, "computeTime") > 0, policy + ": compute time measured");
      assertTrue(Fixtures.metric(e, "hostToDeviceTime") > 0, policy + ": H2D time measured");
      assertTrue(Fixtures.metric(e, "deviceToHostTime") > 0, policy + ": D2H time measured");
    }
  }

  /**
   * Comet-style: the same query on the CPU backend. Device routing differs from the CPU router only at
   * near-ties (bf16 router inputs): at least 90% of tokens route alike, and those agree within bf16.
   */
  @Test
  void gpuAgreesWithCpuWithinBf16() {
    Map<Integer, Row> cpu = new HashMap<>();
    for (Row r : spark.sql("SELECT id, moe_score_routed(embedding, '" + uri + "', 0, map('backend', 'cpu', "
        + "'badRows', 'skip')) AS r FROM staged_emb").collectAsList()) {
      cpu.put(r.getInt(0), r.getStruct(1));
    }
    int same = 0;
    List<float[]> a = new ArrayList<>();
    List<float[]> b = new ArrayList<>();
    List<Row> gpu = query("skip").collectAsList();
    for (Row row : gpu) {
      Row g = row.getStruct(1);
      Row c = cpu.get(row.getInt(0));
      if (g.getList(1).equals(c.getList(1))) {
        same++;
        a.add(Fixtures.floats(g.getList(0)));
        b.add(Fixtures.floats(c.getList(0)));
      }
    }
    assertEquals(cpu.size(), gpu.size());
    assertTrue(same >= gpu.size() * 9 / 10, "only " + same + " of " + gpu.size() + " tokens routed as on the CPU");
    float[] fa = new float[a.size() * hidden];
    float[] fb = new float[fa.length];
    for (int i = 0; i < a.size(); i++) {
      System.arraycopy(a.get(i), 0, fa, i * hidden, hidden);
      System.arraycopy(b.get(i), 0, fb, i * hidden, hidden);
    }
    Tolerance.BF16.assertClose(fa, fb, "GPU vs CPU y on tokens routed alike");
  }
}
