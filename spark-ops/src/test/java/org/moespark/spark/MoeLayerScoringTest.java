package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.apache.spark.ml.Pipeline;
import org.apache.spark.ml.PipelineModel;
import org.apache.spark.ml.PipelineStage;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.FileSourceScanExec;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.moespark.layer.Backend;
import org.moespark.layer.Compute;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;

/**
 * The real scorer: a tiny Qwen2-MoE checkpoint (hf-ref fixture, hidden 32, 8 experts, top-2, shared expert
 * with gate) run through SQL, the DataFrame API, the {@link MoeScorer} Transformer and a saved/loaded
 * Pipeline. Every path must give, bit for bit, what {@link MoeLayer#forward} gives on the same tokens.
 */
class MoeLayerScoringTest {
  static final int N = 61;
  static SparkSession spark;
  static Path model;
  static String uri;
  static int hidden;
  static MoeLayer.Output want;
  static MoeLayer.Output wantBf16;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSession.get();
    spark.conf().set(MoeConf.LOADER, MoeConf.DEFAULT_LOADER);
    model = HfModels.fixture("qwen2_moe_fp32");
    uri = model.toString();
    MoeLayer ref = MoeLayer.load(model, 0, new LayerOptions(Backend.CPU, Compute.FP32));
    hidden = ref.hiddenSize();
    float[] x = new float[N * hidden];
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < N; i++) {
      float[] e = embedding(i, hidden);
      System.arraycopy(e, 0, x, i * hidden, hidden);
      rows.add(RowFactory.create(i, Fixtures.boxed(e)));
    }
    want = ref.forward(x, N);
    wantBf16 = MoeLayer.load(model, 0, new LayerOptions(Backend.CPU, Compute.BF16)).forward(x, N);
    StructType schema = new StructType().add("id", DataTypes.IntegerType, false)
        .add("embedding", DataTypes.createArrayType(DataTypes.FloatType, true), true);
    Path pq = SparkTestSession.tmp().resolve("qwen2-emb.parquet");
    spark.createDataFrame(rows, schema).repartition(2).write().mode("overwrite").parquet(pq.toString());
    spark.read().parquet(pq.toString()).createOrReplaceTempView("qwen_emb");
  }

  @AfterAll
  static void tearDown() {
    spark.conf().set(MoeConf.LOADER, TestLoader.class.getName());
  }

  static float[] embedding(int i, int hidden) {
    SplittableRandom r = new SplittableRandom(7000 + i);
    float[] x = new float[hidden];
    for (int h = 0; h < hidden; h++) {
      x[h] = (float) r.nextGaussian();
    }
    return x;
  }

  /** Bit-equal rows: {@code y[id]} of the reference vs column {@code col}. */
  static void assertRows(List<Row> got, int col, MoeLayer.Output ref) {
    assertEquals(N, got.size());
    boolean[] seen = new boolean[N];
    for (Row r : got) {
      int id = r.getInt(0);
      seen[id] = true;
      float[] y = Fixtures.floats(r.getList(col));
      assertEquals(hidden, y.length, "row " + id);
      for (int h = 0; h < hidden; h++) {
        int w = Float.floatToRawIntBits(ref.y()[id * hidden + h]);
        assertEquals(w, Float.floatToRawIntBits(y[h]), "row " + id + " element " + h);
      }
    }
    for (int i = 0; i < N; i++) {
      assertTrue(seen[i], "row " + i + " missing");
    }
  }

  @Test
  void sqlOnParquetIsBitEqualToMoeLayerForward() {
    Dataset<Row> df = spark.sql("SELECT id, moe_score(embedding, '" + uri + "', 0) AS y, "
        + "moe_score_routed(embedding, '" + uri + "', 0) AS r FROM qwen_emb");
    List<Row> got = df.collectAsList();
    assertRows(got, 1, want);
    int k = want.topK();
    for (Row r : got) {
      int id = r.getInt(0);
      Row s = r.getStruct(2);
      int[] ids = s.<Integer>getList(1).stream().mapToInt(Integer::intValue).toArray();
      float[] ws = Fixtures.floats(s.getList(2));
      float[] y = Fixtures.floats(s.getList(0));
      assertArrayEquals(java.util.Arrays.copyOfRange(want.topkIds(), id * k, id * k + k), ids, "row " + id);
      for (int j = 0; j < k; j++) {
        assertEquals(Float.floatToRawIntBits(want.topkWeights()[id * k + j]), Float.floatToRawIntBits(ws[j]));
      }
      for (int h = 0; h < hidden; h++) {
        assertEquals(Float.floatToRawIntBits(want.y()[id * hidden + h]), Float.floatToRawIntBits(y[h]));
      }
    }
    MoeScoreExec e = Fixtures.exec(df);
    assertInstanceOf(FileSourceScanExec.class, e.child(), "Parquet scan read columnar, straight into the operator:\n"
        + df.queryExecution().executedPlan());
    assertEquals(2L * N, Fixtures.metric(e, "numTokens"), "two calls");
    assertEquals(Fixtures.metric(e, "numBatches"), Fixtures.metric(e, "numCpuBatches"));
    assertEquals(0, Fixtures.metric(e, "numGpuBatches"));
    assertTrue(Fixtures.metric(e, "computeTime") > 0, "compute time recorded");
    assertEquals(0, Fixtures.metric(e, "hostToDeviceTime"), "CPU backend: no transfers");
    assertEquals(0, Fixtures.metric(e, "deviceToHostTime"), "CPU backend: no transfers");
    assertEquals(2L * N, Fixtures.metric(e, "numInputRows") + Fixtures.metric(e, "numOutputRows"));
  }

  @Test
  void smallBatchesAndBf16ComputeMatchForward() {
    Dataset<Row> df = spark.sql("SELECT id, moe_score(embedding, '" + uri + "', 0, map('batchRows', '4')), "
        + "moe_score(embedding, '" + uri + "', 0, map('compute', 'bf16')) FROM qwen_emb");
    List<Row> got = df.collectAsList();
    assertRows(got, 1, want); // the layer's result does not depend on how rows are batched
    assertRows(got, 2, wantBf16);
    assertTrue(Fixtures.metric(Fixtures.exec(df), "numBatches") >= (N + 3) / 4);
  }

  @Test
  void dataFrameApiIsBitEqualToMoeLayerForward() {
    Dataset<Row> df = spark.table("qwen_emb").select(functions.col("id"), functions.call_function("moe_score",
        functions.col("embedding"), functions.lit(uri), functions.lit(0)));
    assertRows(df.collectAsList(), 1, want);
    Dataset<Row> mf = spark.table("qwen_emb").select(functions.col("id"),
        MoeFunctions.moeScore(functions.col("embedding"), uri, 0, java.util.Map.of("batchRows", "8")),
        MoeFunctions.moeScoreRouted(functions.col("embedding"), uri, 0).getField("topk_ids"));
    List<Row> got = mf.collectAsList();
    assertRows(got, 1, want);
    int k = want.topK();
    for (Row r : got) {
      int id = r.getInt(0);
      assertArrayEquals(java.util.Arrays.copyOfRange(want.topkIds(), id * k, id * k + k),
          r.<Integer>getList(2).stream().mapToInt(Integer::intValue).toArray(), "row " + id);
    }
    assertEquals(8, Fixtures.exec(mf).settings().get(0).batchRows());
    assertThrows(IllegalArgumentException.class, () -> MoeFunctions.moeScore(functions.col("embedding"), uri, -1));
  }

  @Test
  void transformerIsBitEqualToMoeLayerForward() {
    MoeScorer t = new MoeScorer().setInputCol("embedding").setOutputCol("y").setModelPath(uri).setLayer(0)
        .setBatchRows(5).setBackend("cpu");
    Dataset<Row> df = t.transform(spark.table("qwen_emb"));
    assertEquals(List.of("id", "embedding", "y"), List.of(df.columns()));
    assertRows(df.collectAsList(), 2, want);
    MoeScoreExec e = Fixtures.exec(df);
    assertEquals(5, e.settings().get(0).batchRows());
    assertEquals(MoeBackend.CPU, e.settings().get(0).backend());
    assertEquals(N, Fixtures.metric(e, "numTokens"));
  }

  @Test
  void transformerSaveLoadAndPipelineRoundTrip() throws Exception {
    // gemm is kept with the stage; the CPU backend (no GPU here) does not use it: the same rows as forward
    MoeScorer t = new MoeScorer().setOutputCol("y").setModelPath(uri).setLayer(0).setBadRows("null").setGemm("mxfp4");
    Path dir = SparkTestSession.tmp().resolve("scorer-stage");
    t.write().overwrite().save(dir.toString());
    MoeScorer back = MoeScorer.load(dir.toString());
    assertEquals(t.uid(), back.uid());
    assertEquals(uri, back.getModelPath());
    assertEquals("embedding", back.getInputCol());
    assertEquals("y", back.getOutputCol());
    assertEquals(0, back.getLayer());
    assertEquals("null", back.$(back.badRows()));
    assertEquals("mxfp4", back.$(back.gemm()));
    assertTrue(!back.isSet(back.batchRows()) && !back.isSet(back.backend()));

    PipelineModel pm = new Pipeline().setStages(new PipelineStage[] {t}).fit(spark.table("qwen_emb"));
    Path pdir = SparkTestSession.tmp().resolve("scorer-pipeline");
    pm.write().overwrite().save(pdir.toString());
    PipelineModel loaded = PipelineModel.load(pdir.toString());
    assertInstanceOf(MoeScorer.class, loaded.stages()[0]);
    assertRows(loaded.transform(spark.table("qwen_emb")).select("id", "y").collectAsList(), 1, want);
  }

  @Test
  void transformerChecksItsSchema() {
    Dataset<Row> in = spark.table("qwen_emb");
    Exception noModel = assertThrows(IllegalArgumentException.class, () -> new MoeScorer().transform(in));
    assertTrue(noModel.getMessage().contains("modelPath is not set"), noModel.getMessage());
    Exception noCol = assertThrows(IllegalArgumentException.class,
        () -> new MoeScorer().setModelPath(uri).setInputCol("emb").transform(in));
    assertTrue(noCol.getMessage().contains("input column 'emb' does not exist"), noCol.getMessage());
    Exception badType = assertThrows(IllegalArgumentException.class,
        () -> new MoeScorer().setModelPath(uri).setInputCol("id").transform(in));
    assertTrue(badType.getMessage().contains("got int"), badType.getMessage());
    Exception clash = assertThrows(IllegalArgumentException.class,
        () -> new MoeScorer().setModelPath(uri).setOutputCol("id").transform(in));
    assertTrue(clash.getMessage().contains("output column 'id' already exists"), clash.getMessage());
    assertThrows(IllegalArgumentException.class, () -> new MoeScorer().setBackend("tpu"));
    assertThrows(IllegalArgumentException.class, () -> new MoeScorer().setGemm("fp16"));
  }

  @Test
  void backendGpuFailsClearlyWhenNoGpuLayerIsUsable() {
    // here: no CUDA library; on the GPU machine: MoeLayer's GPU backend is not written yet. Either way one
    // message naming the key, never a silent CPU run.
    Exception e = assertThrows(Exception.class, () -> spark.sql("SELECT moe_score(embedding, '" + uri
        + "', 0, map('backend', 'gpu')) FROM qwen_emb").collectAsList());
    String msg = String.valueOf(e.getMessage());
    assertTrue(msg.contains(MoeConf.BACKEND + "=gpu but"), msg);
    Dataset<Row> auto = spark.sql("SELECT id, moe_score(embedding, '" + uri + "', 0, map('backend', 'auto')) "
        + "FROM qwen_emb");
    assertRows(auto.collectAsList(), 1, want);
    MoeScoreExec ex = Fixtures.exec(auto);
    assertEquals(Fixtures.metric(ex, "numBatches"), Fixtures.metric(ex, "numCpuBatches"));
  }
}
