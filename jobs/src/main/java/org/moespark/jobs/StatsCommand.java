package org.moespark.jobs;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;

/**
 * {@code moe stats}: routing statistics of a scored data set ({@link RoutingStats}) as Parquet
 * tables and a self-contained HTML report ({@link RoutingReport}).
 *
 * <pre>
 * moe stats --input SCORED_PARQUET --report report.html [--tables DIR] [--experts E] [--id-col id]
 *           [--bins B] [--title T] [--master M]
 * </pre>
 *
 * Tables (default directory: {@code <report name>-tables} next to the report): those of
 * {@link RoutingStats#writeTables} plus {@code token_entropy} (the id column, entropy), one row per
 * token.
 */
final class StatsCommand implements Main.Command {
  @Override
  public String summary() {
    return "routing statistics of a scored data set: Parquet tables and an HTML report";
  }

  @Override
  public int run(String[] argv, PrintStream out) throws Exception {
    if (argv.length == 1 && argv[0].equals("--help")) {
      out.println("usage: moe stats --input SCORED_PARQUET --report report.html [--tables DIR] [--experts E]");
      out.println("                 [--id-col id] [--bins B (" + RoutingStats.DEFAULT_BINS + ")] [--title T] [--master M]");
      return 0;
    }
    Args a = new Args("stats", argv, Set.of("input", "report", "tables", "experts", "id-col", "bins", "title", "master"), Set.of());
    if (!a.positional().isEmpty()) {
      throw new Main.UsageException("unexpected arguments: " + String.join(" ", a.positional()));
    }
    String input = a.required("input");
    Path report = Path.of(a.required("report")).toAbsolutePath();
    if (!report.getFileName().toString().endsWith(".html")) {
      throw new Main.UsageException("option --report: expected a file name ending in .html, got '" + report + "'");
    }
    String base = report.getFileName().toString();
    String tables = a.string("tables", report.resolveSibling(base.substring(0, base.length() - 5) + "-tables").toString());
    int experts = a.intValue("experts", 0, 1, 1 << 20);
    String idCol = a.string("id-col", "id");
    int bins = a.intValue("bins", RoutingStats.DEFAULT_BINS, 1, 1000);
    String title = a.string("title", "MoE routing report");

    try (JobSession js = JobSession.open("moe stats", a.string("master", null))) {
      long t0 = System.nanoTime();
      Dataset<Row> scored = js.spark().read().parquet(input);
      RoutingStats s = RoutingStats.compute(scored, idCol, experts, bins);
      s.writeTables(js.spark(), tables);
      RoutingStats.tokenEntropy(scored, idCol).write().mode(SaveMode.Overwrite).parquet(tables + "/token_entropy");
      if (report.getParent() != null) {
        Files.createDirectories(report.getParent());
      }
      Files.writeString(report, RoutingReport.html(s, title, input), StandardCharsets.UTF_8);
      double sec = (System.nanoTime() - t0) / 1e9;
      out.printf("stats: %,d tokens, E = %d, K = %d, imbalance %.3f, load entropy %.4f nats (%.1f%% of ln E), "
          + "mean token entropy %.4f nats [%.1f s]%n", s.tokens, s.experts, s.topK, s.imbalance(), s.loadEntropy(),
          100 * s.loadEntropyNormalised(), s.entropyMean, sec);
      out.println("report: " + report);
      out.println("tables: " + tables);
    }
    return 0;
  }
}
