package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.testing.Tolerance;

class ScoreCommandTest {
  private static final int H = 16;
  private static final int ROWS = 1223;

  @TempDir static Path tmp;
  private static Path model;
  private static Path input;

  private final SparkSession spark = TestSpark.session();
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) {
    return Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  @BeforeAll
  static void data() {
    TestSpark.session();
    model = tmp.resolve("model");
    input = tmp.resolve("emb.parquet");
    PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertEquals(0, Main.run(new String[] {"gen", "model", "--family", "qwen2_moe", "--output", model.toString(),
        "--hidden", "" + H, "--intermediate", "8", "--experts", "7", "--top-k", "3", "--layers", "2", "--seed", "3"},
        sink, System.err));
    assertEquals(0, Main.run(new String[] {"gen", "embeddings", "--rows", "" + ROWS, "--dim", "" + H, "--seed", "9",
        "--distribution", "clustered", "--output", input.toString(), "--partitions", "3"}, sink, System.err));
  }

  @Test
  void outputEqualsMoeLayerForwardBitForBit() throws Exception {
    Path output = tmp.resolve("scored-1");
    assertEquals(0, run("score", "--model", model.toString(), "--layer", "1", "--input", input.toString(),
        "--output", output.toString(), "--backend", "cpu", "--batch-rows", "100", "--progress-seconds", "0"),
        err.toString());
    String log = out.toString(StandardCharsets.UTF_8);
    assertTrue(log.contains("1,223 rows in, 1,223 rows out"), log);
    assertTrue(log.contains("rows/s = tokens/s"), log);

    StructType schema = spark.read().parquet(output.toString()).schema();
    assertEquals(List.of("id", "output", "topk_ids", "topk_weights"), List.of(schema.fieldNames()));
    assertEquals(DataTypes.LongType, schema.apply("id").dataType());
    assertEquals(DataTypes.IntegerType,
        ((org.apache.spark.sql.types.ArrayType) schema.apply("topk_ids").dataType()).elementType());

    List<Row> in = spark.read().parquet(input.toString()).orderBy("id").collectAsList();
    List<Row> got = spark.read().parquet(output.toString()).orderBy("id").collectAsList();
    assertEquals(ROWS, got.size());
    float[] x = new float[ROWS * H];
    for (int r = 0; r < ROWS; r++) {
      List<Float> e = in.get(r).getList(1);
      for (int k = 0; k < H; k++) {
        x[r * H + k] = e.get(k);
      }
    }
    try (MoeLayer m = MoeLayer.load(model, 1, LayerOptions.defaults())) {
      // reference: every row on its own (rows are independent, so any batching must give these bits)
      for (int r = 0; r < ROWS; r++) {
        Row g = got.get(r);
        assertEquals(r, g.getLong(0));
        MoeLayer.Output ref = m.forward(java.util.Arrays.copyOfRange(x, r * H, (r + 1) * H), 1);
        Tolerance.assertBitEqual(floats(g.getList(1)), ref.y(), "output of row " + r);
        assertArrayEquals(ref.topkIds(), g.getList(2).stream().mapToInt(v -> (Integer) v).toArray(), "topk_ids of row " + r);
        Tolerance.assertBitEqual(floats(g.getList(3)), ref.topkWeights(), "topk_weights of row " + r);
      }
    }
  }

  @Test
  void binaryEncodedInputScoresToTheSameBitsAsArrayInput() throws Exception {
    Path bin = tmp.resolve("emb-binary.parquet");
    assertEquals(0, run("gen", "embeddings", "--rows", "" + ROWS, "--dim", "" + H, "--seed", "9", "--distribution",
        "clustered", "--output", bin.toString(), "--partitions", "2", "--encoding", "binary"), err.toString());
    assertEquals(DataTypes.BinaryType, spark.read().parquet(bin.toString()).schema().apply("embedding").dataType());
    List<Row> arr = spark.read().parquet(input.toString()).orderBy("id").collectAsList();
    List<Row> raw = spark.read().parquet(bin.toString()).orderBy("id").collectAsList();
    for (int r = 0; r < ROWS; r += 97) { // the bytes are the array's floats, little-endian
      java.nio.FloatBuffer f = java.nio.ByteBuffer.wrap((byte[]) raw.get(r).get(1))
          .order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
      List<Float> want = arr.get(r).getList(1);
      for (int k = 0; k < H; k++) {
        assertEquals(Float.floatToRawIntBits(want.get(k)), Float.floatToRawIntBits(f.get(k)), "row " + r + " elem " + k);
      }
    }
    Path a = tmp.resolve("scored-array");
    Path b = tmp.resolve("scored-binary");
    for (Path[] io : new Path[][] {{input, a}, {bin, b}}) {
      assertEquals(0, run("score", "--model", model.toString(), "--layer", "1", "--input", io[0].toString(),
          "--output", io[1].toString(), "--backend", "cpu", "--progress-seconds", "0"), err.toString());
    }
    List<Row> ga = spark.read().parquet(a.toString()).orderBy("id").collectAsList();
    List<Row> gb = spark.read().parquet(b.toString()).orderBy("id").collectAsList();
    assertEquals(ROWS, gb.size());
    for (int r = 0; r < ROWS; r++) {
      Tolerance.assertBitEqual(floats(ga.get(r).getList(1)), floats(gb.get(r).getList(1)), "output of row " + r);
      assertEquals(ga.get(r).getList(2), gb.get(r).getList(2), "topk_ids of row " + r);
    }
  }

  @Test
  void repeatRunsTheNoopJobAgainAndNeedsNoop() {
    assertEquals(0, run("score", "--model", model.toString(), "--layer", "0", "--input", input.toString(),
        "--output", "unused", "--backend", "cpu", "--format", "noop", "--repeat", "2", "--progress-seconds", "0"),
        err.toString());
    String log = out.toString(StandardCharsets.UTF_8);
    assertTrue(log.contains("score: run 1 of 2 (cold") && log.contains("score: run 2 of 2 (warm)"), log);
    assertEquals(2, log.split("1,223 rows in, 1,223 rows out", -1).length - 1, log);
    assertEquals(2, run("score", "--model", model.toString(), "--layer", "0", "--input", input.toString(),
        "--output", tmp.resolve("never").toString(), "--repeat", "2"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("--repeat 2 needs --format noop"), err.toString());
  }

  @Test
  void otherIdAndInputColumnsAndRepartitioning() throws Exception {
    Path renamed = tmp.resolve("renamed.parquet");
    spark.read().parquet(input.toString()).selectExpr("concat('doc-', cast(id as string)) AS `doc key`", "embedding AS vec")
        .write().parquet(renamed.toString());
    Path output = tmp.resolve("scored-2");
    assertEquals(0, run("score", "--model", model.toString(), "--layer", "0", "--input", renamed.toString(),
        "--output", output.toString(), "--id-col", "doc key", "--input-col", "vec", "--partitions", "5",
        "--backend", "cpu", "--progress-seconds", "0"), err.toString());
    List<Row> got = spark.read().parquet(output.toString()).collectAsList();
    assertEquals(ROWS, got.size());
    assertEquals(DataTypes.StringType, spark.read().parquet(output.toString()).schema().apply("doc key").dataType());
    assertEquals(ROWS, got.stream().map(r -> r.getString(0)).distinct().count());
  }

  @Test
  void gemmIsAPerCallOptionTheCpuBackendIgnores() {
    // a GPU GEMM precision on the CPU backend: accepted and not used (same output as without it)
    assertEquals(0, run("score", "--model", model.toString(), "--layer", "0", "--input", input.toString(),
        "--output", "unused", "--backend", "cpu", "--gemm", "nvfp4", "--format", "noop", "--explain",
        "--progress-seconds", "0"), err.toString());
    String log = out.toString(StandardCharsets.UTF_8);
    assertTrue(log.contains("gemm") && log.contains("nvfp4"), "the plan names the option: " + log);
    assertEquals(2, run("score", "--model", model.toString(), "--layer", "0", "--input", input.toString(),
        "--output", tmp.resolve("g").toString(), "--gemm", "fp16"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains(
        "option --gemm: expected one of bf16|fp8|mxfp4|nvfp4, got 'fp16'"), err.toString());
  }

  @Test
  void errorsNameTheProblem() {
    assertEquals(2, run("score", "--model", model.toString(), "--layer", "0", "--input", input.toString(),
        "--output", tmp.resolve("x").toString(), "--input-col", "emb"));
    assertTrue(err.toString().contains("no column 'emb'") && err.toString().contains("embedding"), err.toString());
    err.reset();
    assertEquals(2, run("score", "--model", model.toString(), "--input", input.toString(), "--output", "x"));
    assertTrue(err.toString().contains("--layer"), err.toString());
    err.reset();
    assertEquals(1, run("score", "--model", tmp.resolve("nope").toString(), "--layer", "0", "--input", input.toString(),
        "--output", tmp.resolve("y").toString(), "--progress-seconds", "0"));
    assertTrue(err.toString().contains("nope"), err.toString());
    err.reset();
    assertEquals(1, run("score", "--model", model.toString(), "--layer", "7", "--input", input.toString(),
        "--output", tmp.resolve("z").toString(), "--progress-seconds", "0"));
    assertTrue(err.toString().contains("7"), err.toString());
    assertTrue(!Files.exists(tmp.resolve("z").resolve("_SUCCESS")));
  }

  private static float[] floats(List<Object> l) {
    float[] f = new float[l.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = (Float) l.get(i);
    }
    return f;
  }
}
