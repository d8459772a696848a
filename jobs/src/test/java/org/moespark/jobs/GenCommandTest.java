package org.moespark.jobs;

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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moespark.jobs.EmbeddingGenerator.Distribution;
import org.moespark.testing.Tolerance;

class GenCommandTest {
  private final SparkSession spark = TestSpark.session();
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  @TempDir Path tmp;

  private int run(String... args) {
    return Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  @Test
  void sameDataForAnyPartitioning() {
    String p1 = tmp.resolve("p1").toString();
    String p7 = tmp.resolve("p7").toString();
    assertEquals(0, run("gen", "embeddings", "--rows", "1583", "--dim", "7", "--seed", "5", "--output", p1, "--partitions", "1"), err.toString());
    assertEquals(0, run("gen", "embeddings", "--rows", "1583", "--dim", "7", "--seed", "5", "--output", p7, "--partitions", "7"), err.toString());
    assertTrue(out.toString(StandardCharsets.UTF_8).contains("1583 rows x 7 (normal, seed 5) in 7 partitions"), out.toString());
    List<Row> a = spark.read().parquet(p1).orderBy("id").collectAsList();
    List<Row> b = spark.read().parquet(p7).orderBy("id").collectAsList();
    assertEquals(1583, a.size());
    assertEquals(1583, b.size());
    EmbeddingGenerator ref = new EmbeddingGenerator(7, 5, Distribution.NORMAL, 16, 0.1);
    for (int i = 0; i < a.size(); i++) {
      assertEquals(i, a.get(i).getLong(0));
      assertEquals(i, b.get(i).getLong(0));
      Tolerance.assertBitEqual(floats(a.get(i)), ref.row(i), "P=1 row " + i);
      Tolerance.assertBitEqual(floats(b.get(i)), ref.row(i), "P=7 row " + i);
    }
    StructType schema = spark.read().parquet(p7).schema();
    assertEquals(DataTypes.LongType, schema.apply("id").dataType());
    assertEquals(DataTypes.createArrayType(DataTypes.FloatType, true), schema.apply("embedding").dataType());
    assertEquals(7, countFiles(p7), "one file per partition");
  }

  @Test
  void zeroRowsAndClustered() {
    String p = tmp.resolve("empty").toString();
    assertEquals(0, run("gen", "embeddings", "--rows", "0", "--dim", "3", "--output", p, "--partitions", "2"), err.toString());
    assertEquals(0, spark.read().parquet(p).count());
    String c = tmp.resolve("clustered").toString();
    assertEquals(0, run("gen", "embeddings", "--rows", "50", "--dim", "4", "--distribution", "clustered", "--clusters", "3",
        "--spread", "0", "--output", c, "--partitions", "3"), err.toString());
    long distinct = spark.read().parquet(c).select("embedding").distinct().count();
    assertTrue(distinct >= 1 && distinct <= 3, "50 rows of 3 clusters with spread 0 gave " + distinct + " distinct embeddings");
  }

  @Test
  void existingOutputNeedsOverwrite() {
    String p = tmp.resolve("twice").toString();
    assertEquals(0, run("gen", "embeddings", "--rows", "3", "--dim", "2", "--output", p, "--partitions", "1"), err.toString());
    assertEquals(1, run("gen", "embeddings", "--rows", "3", "--dim", "2", "--output", p, "--partitions", "1"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("already exists"), err.toString());
    assertEquals(0, run("gen", "embeddings", "--rows", "4", "--dim", "2", "--output", p, "--partitions", "1", "--overwrite"), err.toString());
    assertEquals(4, spark.read().parquet(p).count());
  }

  @Test
  void usageErrorsNameTheOption() {
    assertEquals(2, run("gen", "embeddings", "--rows", "3", "--output", "x"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("missing required option --dim"), err.toString());
    assertEquals(2, run("gen", "embeddings", "--rows", "-1", "--dim", "2", "--output", "x"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("option --rows: expected 0 <= value"), err.toString());
    assertEquals(2, run("gen", "embeddings", "--rows", "1", "--dim", "2", "--output", "x", "--distribution", "gauss"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("expected one of normal|uniform|clustered, got 'gauss'"), err.toString());
    assertEquals(2, run("gen", "embeddings", "--rows", "1", "--dim", "2", "--output", "x", "--colour", "red"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown option --colour"), err.toString());
    assertEquals(2, run("gen", "pictures"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown target 'pictures'"), err.toString());
  }

  static float[] floats(Row r) {
    Object v = r.get(r.fieldIndex("embedding"));
    List<?> l = v instanceof scala.collection.Seq
        ? scala.jdk.javaapi.CollectionConverters.asJava((scala.collection.Seq<?>) v)
        : (List<?>) v;
    float[] f = new float[l.size()];
    for (int i = 0; i < f.length; i++) {
      f[i] = (Float) l.get(i);
    }
    return f;
  }

  private static long countFiles(String dir) {
    try (var s = Files.list(Path.of(dir))) {
      return s.filter(x -> x.getFileName().toString().endsWith(".parquet")).count();
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }
}
