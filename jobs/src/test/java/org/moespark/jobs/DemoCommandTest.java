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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoCommandTest {
  private final SparkSession spark = TestSpark.session();
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  @TempDir Path tmp;

  @Test
  void demoRunsEveryStepAndSaysWhereTheOutputsAre() throws Exception {
    Path dir = tmp.resolve("demo");
    int rc = Main.run(new String[] {"demo", "--dir", dir.toString(), "--rows", "1500", "--hidden", "16",
        "--backend", "cpu"}, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    String log = out.toString(StandardCharsets.UTF_8);
    assertEquals(0, rc, log + err);
    for (String step : List.of("== 1/4 gen model", "== 2/4 gen embeddings", "== 3/4 score", "== 4/4 stats")) {
      assertTrue(log.contains(step), step + " missing in\n" + log);
    }
    assertTrue(log.contains("report      " + dir.resolve("report.html")), log);
    assertTrue(Files.exists(dir.resolve("model/config.json")));
    assertTrue(Files.exists(dir.resolve("model/model.safetensors")));
    assertEquals(1500, spark.read().parquet(dir.resolve("scored.parquet").toString()).count());
    // olmoe default: 16 experts, top-4; the load table covers every expert and sums to 4 per token
    List<Row> load = spark.read().parquet(dir.resolve("tables/expert_load").toString()).collectAsList();
    assertEquals(16, load.size());
    long assignments = 0;
    for (Row r : load) {
      assignments += ((Number) r.getAs("tokens")).longValue();
    }
    assertEquals(1500L * 4, assignments);
    String html = Files.readString(dir.resolve("report.html"));
    assertTrue(html.contains("<svg") && html.contains("olmoe"), "report has charts and names the model");
    // a second run over the same directory replaces it
    out.reset();
    assertEquals(0, Main.run(new String[] {"demo", "--dir", dir.toString(), "--rows", "100", "--hidden", "16",
        "--backend", "cpu"}, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8)), err.toString());
    assertEquals(100, spark.read().parquet(dir.resolve("scored.parquet").toString()).count());
  }
}
