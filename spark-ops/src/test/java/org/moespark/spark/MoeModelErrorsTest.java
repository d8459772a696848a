package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A model that cannot be used gives one clear error: checked on the driver while the query is planned
 * (before any task), and a load failure on an executor is remembered so that the other tasks do not
 * re-read the checkpoint.
 */
class MoeModelErrorsTest {
  static SparkSession spark;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSession.get();
    Fixtures.parquet(spark).createOrReplaceTempView("emb_pq");
  }

  @AfterEach
  void restoreLoader() {
    spark.conf().set(MoeConf.LOADER, TestLoader.class.getName());
  }

  /** The failure of planning {@code sql} (no job runs: planning is on the driver). */
  static String planningError(String sql) {
    Dataset<Row> df = spark.sql(sql);
    Exception e = assertThrows(Exception.class, () -> df.queryExecution().executedPlan());
    return String.valueOf(e.getMessage());
  }

  @Test
  void missingPathFailsAtPlanning() {
    Path missing = SparkTestSession.tmp().resolve("no-such-model");
    String msg = planningError("SELECT moe_score(emb, '" + missing + "', 0) FROM emb_pq");
    assertTrue(msg.contains("moe_score: model '" + missing + "' layer 0 cannot be used"), msg);
    assertTrue(msg.contains("does not exist"), msg);
    spark.conf().set(MoeConf.LOADER, MoeConf.DEFAULT_LOADER);
    String msg2 = planningError("SELECT moe_score_routed(emb, 'file://" + missing + "', 0) FROM emb_pq");
    assertTrue(msg2.contains("moe_score_routed: model 'file://" + missing + "'") && msg2.contains("does not exist"),
        msg2);
  }

  @Test
  void brokenCheckpointsFailAtPlanningWithTheReason() throws Exception {
    spark.conf().set(MoeConf.LOADER, MoeConf.DEFAULT_LOADER);
    Path good = HfModels.fixture("qwen2_moe_fp32");
    String cfg = Files.readString(good.resolve("config.json"));

    String range = planningError("SELECT moe_score(emb, '" + good + "', 1) FROM emb_pq");
    assertTrue(range.contains("layer 1 out of range [0, 1)"), range);

    Path noWeights = SparkTestSession.tmp().resolve("bad-no-weights");
    Files.createDirectories(noWeights);
    Files.writeString(noWeights.resolve("config.json"), cfg);
    String nw = planningError("SELECT moe_score(emb, '" + noWeights + "', 0) FROM emb_pq");
    assertTrue(nw.contains("no weights (expected model.safetensors"), nw);

    Path garbage = SparkTestSession.tmp().resolve("bad-header");
    Files.createDirectories(garbage);
    Files.writeString(garbage.resolve("config.json"), cfg);
    Files.write(garbage.resolve("model.safetensors"), new byte[] {(byte) 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    String gh = planningError("SELECT moe_score(emb, '" + garbage + "', 0) FROM emb_pq");
    assertTrue(gh.contains("model '" + garbage + "' layer 0 cannot be used") && gh.contains("model.safetensors"), gh);

    Path dense = SparkTestSession.tmp().resolve("bad-dense");
    Files.createDirectories(dense);
    String denseCfg = cfg.replace("\"mlp_only_layers\": []", "\"mlp_only_layers\": [0]");
    assertTrue(!denseCfg.equals(cfg), "fixture config changed: no empty mlp_only_layers");
    Files.writeString(dense.resolve("config.json"), denseCfg);
    Files.copy(good.resolve("model.safetensors"), dense.resolve("model.safetensors"));
    String dm = planningError("SELECT moe_score(emb, '" + dense + "', 0) FROM emb_pq");
    assertTrue(dm.contains("layer 0 of qwen2_moe is dense"), dm);

    Path notJson = SparkTestSession.tmp().resolve("bad-json");
    Files.createDirectories(notJson);
    Files.writeString(notJson.resolve("config.json"), "{\"hidden_size\": 32,");
    String nj = planningError("SELECT moe_score(emb, '" + notJson + "', 0) FROM emb_pq");
    assertTrue(nj.contains("config.json does not parse"), nj);
  }

  @Test
  void executorLoadFailureIsOneErrorAndLoadedOncePerJvm() {
    Path m = TestLoader.write(SparkTestSession.tmp().resolve("model-fails"), Fixtures.HIDDEN, Fixtures.EXPERTS,
        Fixtures.TOPK, 42, true);
    String sql = "SELECT moe_score(emb, '" + m + "', 1) FROM emb_pq";
    int before = TestLoader.LOADS.get();
    Exception e = assertThrows(Exception.class, () -> spark.sql(sql).collectAsList());
    String msg = String.valueOf(e.getMessage());
    assertTrue(msg.contains("moe_score: model " + m + " layer 1 failed to load"), msg);
    assertTrue(msg.contains("weights are corrupt (fail_load)"), msg);
    assertEquals(1, TestLoader.LOADS.get() - before, "both partitions' tasks share one load attempt");
    Exception again = assertThrows(Exception.class, () -> spark.sql(sql).collectAsList());
    assertTrue(String.valueOf(again.getMessage()).contains("(earlier attempt in this executor)"), again.getMessage());
    assertEquals(1, TestLoader.LOADS.get() - before, "a failed load is not retried in this JVM");
  }
}
