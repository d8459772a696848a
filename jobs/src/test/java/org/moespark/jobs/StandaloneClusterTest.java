package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code moe score} submitted to a real standalone cluster (a Master and two Workers, separate JVMs, see
 * {@link StandaloneCluster}) gives exactly the local-mode output; and still does when one Worker is killed
 * (SIGKILL, by pid) while the job runs.
 */
@Tag("cluster")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class StandaloneClusterTest {
  private static final int ROWS = 3001;
  private static final Pattern PROGRESS = Pattern.compile("score: ([\\d,]+) / ([\\d,]+) rows");

  @TempDir static Path tmp;
  private static StandaloneCluster cluster;
  private static Path model;
  private static Path input;
  private static List<String> local;

  @BeforeAll
  static void setUp() throws Exception {
    SparkSession spark = TestSpark.session();
    model = tmp.resolve("model");
    input = tmp.resolve("emb.parquet");
    Path localOut = tmp.resolve("local.parquet");
    PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertEquals(0, Main.run(new String[] {"gen", "model", "--family", "deepseek_v3", "--output", model.toString(),
        "--hidden", "32", "--intermediate", "16", "--experts", "8", "--top-k", "2", "--seed", "4"}, sink, System.err));
    assertEquals(0, Main.run(new String[] {"gen", "embeddings", "--rows", "" + ROWS, "--dim", "32", "--seed", "8",
        "--output", input.toString(), "--partitions", "2"}, sink, System.err));
    assertEquals(0, Main.run(new String[] {"score", "--model", model.toString(), "--layer", "0", "--input",
        input.toString(), "--output", localOut.toString(), "--backend", "cpu", "--progress-seconds", "0"}, sink,
        System.err));
    local = canonical(spark, localOut);
    assertEquals(ROWS, local.size());
    long t0 = System.nanoTime();
    // under target/ (not the temp dir) so that the Master, Worker, executor and driver logs outlive a failure
    Path dir = Path.of("target", "standalone-cluster").toAbsolutePath();
    deleteTree(dir);
    cluster = StandaloneCluster.start(dir, 2, 1, "1g");
    System.out.printf("standalone cluster: master + 2 workers up in %.1f s%n", (System.nanoTime() - t0) / 1e9);
  }

  @AfterAll
  static void tearDown() {
    if (cluster != null) {
      cluster.close();
    }
    StandaloneCluster.killAll();
  }

  private static Map<String, String> conf(long taskDelayMs) {
    Map<String, String> c = new LinkedHashMap<>();
    c.put("spark.executor.memory", "512m");
    c.put("spark.executor.cores", "1");
    c.put("spark.cores.max", "2");
    c.put("spark.ui.enabled", "false");
    c.put("spark.driver.host", "127.0.0.1");
    c.put("spark.sql.shuffle.partitions", "4");
    c.put(GenCommand.TASK_DELAY_KEY, "" + taskDelayMs);
    return c;
  }

  @Test
  @Order(1)
  void clusterOutputEqualsLocalOutput() throws Exception {
    Path out = tmp.resolve("cluster-1.parquet");
    long t0 = System.nanoTime();
    StandaloneCluster.Submission s = cluster.submit("score-1", conf(0), "score", "--model", model.toString(),
        "--layer", "0", "--input", input.toString(), "--output", out.toString(), "--backend", "cpu",
        "--partitions", "4", "--progress-seconds", "0");
    assertEquals(0, s.await(300), "spark-submit failed; stdout " + s.stdout() + "\n" + StandaloneCluster.tail(s.log()));
    assertTrue(String.join("\n", s.stdout()).contains("3,001 rows in, 3,001 rows out"), s.stdout().toString());
    assertTrue(Files.readString(s.log()).contains("spark://127.0.0.1:"), "ran against the standalone master");
    System.out.printf("standalone cluster: score run in %.1f s%n", (System.nanoTime() - t0) / 1e9);
    assertEquals(local, canonical(TestSpark.session(), out));
  }

  @Test
  @Order(2)
  void killingAWorkerMidJobGivesTheSameOutput() throws Exception {
    Path out = tmp.resolve("cluster-2.parquet");
    long t0 = System.nanoTime();
    StandaloneCluster.Submission s = cluster.submit("score-2", conf(2000), "score", "--model", model.toString(),
        "--layer", "0", "--input", input.toString(), "--output", out.toString(), "--backend", "cpu",
        "--partitions", "8", "--progress-seconds", "0.5");
    // wait until some tasks have finished and others remain, then kill Worker 1 by its pid
    String line = s.awaitLine(l -> {
      Matcher m = PROGRESS.matcher(l);
      return m.find() && !m.group(1).equals("0") && !m.group(1).equals(m.group(2));
    }, 240);
    long pid = cluster.workerPid(1);
    cluster.killWorker(1);
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "worker pid " + pid + " is gone");
    assertEquals(0, s.await(300), "spark-submit failed after the kill (at '" + line + "'); stdout " + s.stdout()
        + "\n" + StandaloneCluster.tail(s.log()));
    String log = Files.readString(s.log());
    assertTrue(log.contains("Lost executor") && log.contains("worker lost"),
        "the driver lost the killed Worker's executor:\n" + StandaloneCluster.tail(s.log()));
    System.out.printf("standalone cluster: score run with a worker killed at '%s' in %.1f s%n", line,
        (System.nanoTime() - t0) / 1e9);
    assertEquals(local, canonical(TestSpark.session(), out), "output after losing a worker");
  }

  private static void deleteTree(Path root) throws java.io.IOException {
    if (Files.exists(root)) {
      try (var walk = Files.walk(root)) {
        for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  /** Rows sorted by id, each as "id|bits of output|ids|bits of weights": equality is bit-for-bit. */
  static List<String> canonical(SparkSession spark, Path p) {
    List<String> out = new ArrayList<>();
    for (Row r : spark.read().parquet(p.toString()).orderBy("id").collectAsList()) {
      StringBuilder sb = new StringBuilder().append(r.getLong(0)).append('|');
      for (Object f : r.getList(1)) {
        sb.append(Integer.toHexString(Float.floatToRawIntBits((Float) f))).append(',');
      }
      sb.append('|').append(r.getList(2)).append('|');
      for (Object f : r.getList(3)) {
        sb.append(Integer.toHexString(Float.floatToRawIntBits((Float) f))).append(',');
      }
      out.add(sb.toString());
    }
    return out;
  }
}
