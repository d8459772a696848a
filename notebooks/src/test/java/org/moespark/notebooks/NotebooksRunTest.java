package org.moespark.notebooks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;
import org.moespark.jobs.Main;
import org.moespark.spark.MoeExtensions;
import org.moespark.testing.Tolerance;

/**
 * Runs every {@code *.sql} notebook under {@code notebooks/} on a local[2] session with the moespark
 * extension installed ({@link MoeExtensions#install}: the notebooks' {@code %scala} install cell is
 * skipped), with parameters pointing at fixtures made here: a tiny generated OLMoE checkpoint and
 * embeddings ({@code bin/moe gen}), and a hand-built scored data set with known routing.
 */
class NotebooksRunTest {
  private static final int E = 4;

  @TempDir static Path tmp;
  private static SparkSession spark;
  private static Map<String, String> params;

  @BeforeAll
  static void setUp() throws IOException {
    spark = SparkSession.builder().master("local[2]").appName("moespark-notebooks-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.warehouse.dir", tmp.resolve("warehouse").toString())
        .getOrCreate();
    MoeExtensions.install(spark);
    Path model = tmp.resolve("model");
    Path data = tmp.resolve("embeddings.parquet");
    PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertEquals(0, Main.run(new String[] {"gen", "model", "--family", "olmoe", "--output", model.toString(), "--hidden",
        "16", "--intermediate", "8", "--experts", "" + E, "--top-k", "2", "--seed", "1"}, sink, System.err));
    assertEquals(0, Main.run(new String[] {"gen", "embeddings", "--rows", "300", "--dim", "16", "--output",
        data.toString(), "--partitions", "2"}, sink, System.err));
    Path scored = tmp.resolve("known-routing.parquet");
    spark.createDataFrame(knownRouting(), new StructType()
        .add("id", DataTypes.LongType, false)
        .add("output", DataTypes.createArrayType(DataTypes.FloatType, false), false)
        .add("topk_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
        .add("topk_weights", DataTypes.createArrayType(DataTypes.FloatType, false), false))
        .coalesce(1).write().parquet(scored.toString());
    params = new HashMap<>();
    params.put("data_path", data.toString());
    params.put("model_path", model.toString());
    params.put("output_path", tmp.resolve("scored-by-notebook").toString());
    params.put("scored_path", scored.toString());
    params.put("num_experts", "" + E);
  }

  @AfterAll
  static void tearDown() {
    if (spark != null) {
      spark.stop();
    }
  }

  /**
   * E = 4, K = 2, dyadic weights (exact in float and double): expert 3 is never chosen; token 2's
   * weights sum to 0.5 (normalised: 0.75/0.25); token 3 puts weight 0 on its second expert.
   */
  static List<Row> knownRouting() {
    List<Row> rows = new ArrayList<>();
    rows.add(RowFactory.create(0L, new float[] {1f}, new int[] {0, 1}, new float[] {0.75f, 0.25f}));
    rows.add(RowFactory.create(1L, new float[] {1f}, new int[] {0, 2}, new float[] {0.5f, 0.5f}));
    rows.add(RowFactory.create(2L, new float[] {1f}, new int[] {1, 0}, new float[] {0.375f, 0.125f}));
    rows.add(RowFactory.create(3L, new float[] {1f}, new int[] {2, 0}, new float[] {1.0f, 0.0f}));
    return rows;
  }

  static List<Path> notebooks() throws IOException {
    try (Stream<Path> s = Files.list(Path.of(".").toAbsolutePath().normalize())) {
      return s.filter(p -> p.getFileName().toString().endsWith(".sql")).sorted().toList();
    }
  }

  /** A notebook's run: its own session (temp views and SET keys do not leak between notebooks) and result. */
  record Run(SparkSession session, NotebookRunner.Result result, Notebook notebook) {}

  private static final Map<String, Run> RUNS = new HashMap<>();

  /** Runs a notebook once per test JVM, in a fresh session of the shared context with the extension installed. */
  static synchronized Run runOnce(Path file) throws IOException {
    String key = file.toAbsolutePath().normalize().toString();
    Run r = RUNS.get(key);
    if (r == null) {
      SparkSession s = spark.newSession();
      MoeExtensions.install(s);
      Notebook nb = Notebook.read(file);
      r = new Run(s, NotebookRunner.run(nb, s, params), nb);
      RUNS.put(key, r);
    }
    return r;
  }

  @TestFactory
  Stream<DynamicTest> everyNotebookRuns() throws IOException {
    List<Path> nbs = notebooks();
    assertTrue(nbs.size() >= 2, "expected the notebooks under " + Path.of(".").toAbsolutePath() + ", found " + nbs);
    return nbs.stream().map(p -> DynamicTest.dynamicTest(p.getFileName().toString(), () -> {
      Run run = runOnce(p);
      Notebook nb = run.notebook();
      NotebookRunner.Result r = run.result();
      assertTrue(r.sqlCells() > 0 && r.statements() >= r.sqlCells(), nb.name() + ": " + r);
      assertTrue(r.skipped().getOrDefault("md", 0) > 0, nb.name() + " documents itself in %md cells: " + r);
      System.out.printf("notebook %s: %d SQL cells, %d statements, skipped %s%n", nb.name(), r.sqlCells(),
          r.statements(), r.skipped());
    }));
  }

  @Test
  void scoringNotebookWritesEveryRow() throws IOException {
    Run run = runOnce(Path.of("01_score_embeddings.sql"));
    NotebookRunner.Result r = run.result();
    assertEquals(Map.of("md", 6, "scala", 1), r.skipped());
    List<Row> last = NotebookRunner.rows(r, run.notebook().cells().size());
    assertEquals(300L, last.get(0).getLong(0), "rows written by the notebook");
    List<Row> routed = spark.read().parquet(params.get("output_path")).selectExpr("size(topk_ids)", "size(output)")
        .distinct().collectAsList();
    assertEquals(List.of(RowFactory.create(2, 16)), routed);
  }

  @Test
  void routingNotebookGivesTheHandComputedNumbers() throws IOException {
    SparkSession spark = runOnce(Path.of("02_routing_statistics.sql")).session();
    List<Row> load = spark.sql("SELECT expert, tokens, share, weight_sum FROM expert_load ORDER BY expert").collectAsList();
    assertEquals(List.of(
        RowFactory.create(0, 4L, 0.5, 1.375),
        RowFactory.create(1, 2L, 0.25, 0.625),
        RowFactory.create(2, 2L, 0.25, 1.5),
        RowFactory.create(3, 0L, 0.0, 0.0)), load);
    Row s = spark.sql("SELECT imbalance, load_entropy, max_entropy FROM load_summary").first();
    assertEquals(2.0, ((Number) s.get(0)).doubleValue(), 0.0, "imbalance = 4 / mean 2");
    Tolerance.FP32.assertClose(new float[] {(float) s.getDouble(1), (float) s.getDouble(2)},
        new float[] {(float) (1.5 * Math.log(2)), (float) Math.log(4)}, "load entropy, ln E");
    List<Row> ent = spark.sql("SELECT entropy FROM token_entropy ORDER BY id").collectAsList();
    double h34 = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
    float[] got = new float[4];
    for (int i = 0; i < 4; i++) {
      got[i] = (float) ent.get(i).getDouble(0);
    }
    Tolerance.FP32.assertClose(got, new float[] {(float) h34, (float) Math.log(2), (float) h34, 0f}, "token entropy");
    assertEquals(0.0, got[3], 0.0, "a one-hot token has entropy exactly 0");
    List<Row> co = spark.sql("SELECT expert_a, expert_b, tokens FROM coactivation ORDER BY expert_a, expert_b")
        .collectAsList();
    assertEquals(List.of(RowFactory.create(0, 1, 2L), RowFactory.create(0, 2, 2L)), co);
  }

  @Test
  void aFailingStatementIsNamed() {
    Notebook nb = Notebook.parse("broken.sql", String.join("\n", "-- Databricks notebook source", "SELECT 1",
        "-- COMMAND ----------", "SELECT 2; SELECT no_such_column FROM range(1)"));
    AssertionError e = assertThrows(AssertionError.class, () -> NotebookRunner.run(nb, spark, Map.of()));
    assertTrue(e.getMessage().startsWith("notebook broken.sql, cell 2, statement 2 of 2 failed:\n"
        + "SELECT no_such_column FROM range(1)"), e.getMessage());
    assertFalse(e.getMessage().contains("cell 1"), e.getMessage());
  }
}
