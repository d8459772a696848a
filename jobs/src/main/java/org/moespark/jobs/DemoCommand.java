package org.moespark.jobs;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * {@code moe demo}: the whole pipeline in one command, in an embedded local Spark session —
 * {@code gen model} (a tiny random checkpoint), {@code gen embeddings} (clustered, so routing is
 * uneven and the report has something to show), {@code score} and {@code stats} — writing everything
 * under {@code --dir} and printing where it is.
 *
 * <pre>
 * moe demo [--dir D (./moe-demo)] [--rows N (20000)] [--family F (olmoe)] [--hidden H (64)]
 *          [--experts E] [--top-k K] [--seed S (0)] [--backend auto|cpu|gpu] [--master M (local[*])]
 * </pre>
 *
 * Re-running over the same directory replaces its contents.
 */
final class DemoCommand implements Main.Command {
  @Override
  public String summary() {
    return "gen model + gen embeddings + score + stats in local Spark, one command (--dir D)";
  }

  @Override
  public int run(String[] argv, PrintStream out) throws Exception {
    if (argv.length == 1 && argv[0].equals("--help")) {
      out.println("usage: moe demo [--dir D (./moe-demo)] [--rows N (20000)] [--family F (olmoe)] [--hidden H (64)]");
      out.println("                [--experts E] [--top-k K] [--seed S] [--backend auto|cpu|gpu] [--master M]");
      return 0;
    }
    Args a = new Args("demo", argv,
        Set.of("dir", "rows", "family", "hidden", "experts", "top-k", "seed", "backend", "master"), Set.of());
    if (!a.positional().isEmpty()) {
      throw new Main.UsageException("unexpected arguments: " + String.join(" ", a.positional()));
    }
    Path dir = Path.of(a.string("dir", "moe-demo")).toAbsolutePath().normalize();
    long rows = a.longValue("rows", 20000, 1, 1L << 40);
    String family = a.choice("family", "olmoe", "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss");
    int hidden = a.intValue("hidden", 64, 1, 1 << 16);
    String seed = Long.toString(a.longValue("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE));
    String backend = a.choice("backend", "auto", "auto", "cpu", "gpu");
    Files.createDirectories(dir);
    Path model = dir.resolve("model");
    Path embeddings = dir.resolve("embeddings.parquet");
    Path scored = dir.resolve("scored.parquet");
    Path report = dir.resolve("report.html");
    Path tables = dir.resolve("tables");

    long t0 = System.nanoTime();
    try (JobSession js = JobSession.open("moe demo", a.string("master", null))) {
      java.util.List<String> gm = new java.util.ArrayList<>(java.util.List.of("model", "--family", family,
          "--output", model.toString(), "--hidden", "" + hidden, "--seed", seed, "--overwrite"));
      if (a.has("experts")) {
        gm.addAll(java.util.List.of("--experts", "" + a.intValue("experts", 0, 1, 4096)));
      }
      if (a.has("top-k")) {
        gm.addAll(java.util.List.of("--top-k", "" + a.intValue("top-k", 0, 1, 4096)));
      }
      step(out, "1/4 gen model", new GenCommand(), gm.toArray(new String[0]));
      step(out, "2/4 gen embeddings", new GenCommand(), "embeddings", "--rows", "" + rows, "--dim", "" + hidden,
          "--distribution", "clustered", "--clusters", "12", "--spread", "0.35", "--seed", seed, "--output",
          embeddings.toString(), "--overwrite");
      step(out, "3/4 score", new ScoreCommand(), "--model", model.toString(), "--layer", "0", "--input",
          embeddings.toString(), "--output", scored.toString(), "--backend", backend, "--overwrite");
      step(out, "4/4 stats", new StatsCommand(), "--input", scored.toString(), "--report", report.toString(),
          "--tables", tables.toString(), "--title", "moespark demo: " + family + " layer 0, " + rows + " tokens");
    }
    out.println();
    out.printf(Locale.ROOT, "demo done in %.1f s. Outputs under %s:%n", (System.nanoTime() - t0) / 1e9, dir);
    out.println("  model       " + model + "   (config.json + model.safetensors, " + family + ")");
    out.println("  embeddings  " + embeddings);
    out.println("  scored      " + scored + "   (id, output, topk_ids, topk_weights)");
    out.println("  report      " + report + "   (open in a browser)");
    out.println("  tables      " + tables + "   (Parquet: expert load, entropy, weights, co-activation)");
    return 0;
  }

  private static void step(PrintStream out, String name, Main.Command c, String... args) throws Exception {
    out.println("== " + name);
    int rc = c.run(args, out);
    if (rc != 0) {
      throw new IllegalStateException("demo step '" + name + "' exited with " + rc);
    }
  }
}
