package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.moespark.cuda.NativeLibrary;
import org.moespark.layer.Backend;
import org.moespark.layer.Compute;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.testing.Tolerance;

/**
 * Comet-style check on the GPU machine: the same query with {@code backend=cpu} and {@code backend=gpu}
 * agree, and the GPU path really ran (every scorer batch counted as a GPU batch). The GPU layer runs
 * bf16 GEMMs and routes on the device from bf16-rounded router inputs, so the contract is bf16 agreement
 * on the tokens routed alike (near-tied experts may swap: at least 90% must route alike), as in
 * MoeLayerGpuTest. Skipped when the CUDA library is unavailable or MoeLayer has no GPU backend yet.
 */
@Tag("gpu")
class MoeScoreGpuTest {
  static SparkSession spark;
  static String uri;

  @BeforeAll
  static void setUp() {
    assumeTrue(NativeLibrary.isAvailable(), () -> "no GPU: " + NativeLibrary.unavailableReason());
    Path model = HfModels.fixture("qwen2_moe_fp32");
    try (MoeLayer l = MoeLayer.load(model, 0, new LayerOptions(Backend.GPU, Compute.FP32))) {
      assumeTrue("gpu".equals(l.backend()), "MoeLayer GPU backend reports " + l.backend());
    } catch (UnsupportedOperationException e) {
      assumeTrue(false, "MoeLayer has no GPU backend yet: " + e.getMessage());
    }
    spark = SparkTestSession.get();
    spark.conf().set(MoeConf.LOADER, MoeConf.DEFAULT_LOADER);
    uri = model.toString();
    MoeLayerScoringTest.setUp(); // registers qwen_emb (61 rows of hidden 32, Parquet)
  }

  @AfterAll
  static void tearDown() {
    if (spark != null) {
      spark.conf().set(MoeConf.LOADER, TestLoader.class.getName());
    }
  }

  /** id → routed struct (output, topk_ids, topk_weights). */
  static Map<Integer, Row> run(String backend, long[] batches) {
    Dataset<Row> df = spark.sql("SELECT id, moe_score_routed(embedding, '" + uri + "', 0, map('backend', '" + backend
        + "')) FROM qwen_emb");
    Map<Integer, Row> out = new HashMap<>();
    List<Row> rows = df.collectAsList();
    for (Row r : rows) {
      out.put(r.getInt(0), r.getStruct(1));
    }
    MoeScoreExec e = Fixtures.exec(df);
    batches[0] = Fixtures.metric(e, "numBatches");
    batches[1] = Fixtures.metric(e, "numGpuBatches");
    return out;
  }

  @Test
  void gpuAgreesWithCpuAndReallyRanOnTheGpu() {
    long[] cpuB = new long[2];
    long[] gpuB = new long[2];
    Map<Integer, Row> cpu = run("cpu", cpuB);
    Map<Integer, Row> gpu = run("gpu", gpuB);
    assertEquals(cpu.keySet(), gpu.keySet());
    int same = 0;
    for (Map.Entry<Integer, Row> e : cpu.entrySet()) {
      Row g = gpu.get(e.getKey());
      if (g.getList(1).equals(e.getValue().getList(1))) {
        same++;
        Tolerance.BF16.assertClose(Fixtures.floats(g.getList(0)), Fixtures.floats(e.getValue().getList(0)),
            "row " + e.getKey());
      }
    }
    assertTrue(same >= cpu.size() * 9 / 10, "only " + same + " of " + cpu.size() + " rows routed as on the CPU");
    assertEquals(0, cpuB[1]);
    assertTrue(gpuB[0] > 0 && gpuB[1] == gpuB[0], "GPU batches " + gpuB[1] + " of " + gpuB[0]);
  }
}
