package org.moespark.jobs;

import java.util.Locale;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;

/**
 * How fast Spark alone reads an embeddings Parquet: the vectorized reader decodes every column of the
 * input and Spark's {@code noop} sink discards the rows (no MoE, no writer). The ceiling the reader puts on
 * a {@code moe score} job over the same data, measured in the same session settings.
 *
 * <pre>java ... org.moespark.jobs.ParquetScanBench INPUT [master=local[*]] [reps=2]</pre>
 * Prints {@code scan.tokens_per_s} (rows/s) and the decoded GB/s of the input files, best of {@code reps}.
 */
public final class ParquetScanBench {
  private ParquetScanBench() {}

  public static void main(String[] a) {
    if (a.length < 1) {
      System.err.println("usage: ParquetScanBench INPUT [master] [reps]");
      System.exit(2);
    }
    String master = a.length > 1 ? a[1] : "local[*]";
    int reps = a.length > 2 ? Integer.parseInt(a[2]) : 2;
    SparkSession spark = SparkSession.builder().appName("parquet scan bench").master(master).getOrCreate();
    try {
      long rows = spark.read().parquet(a[0]).count();
      long bytes = 0;
      try (var files = java.nio.file.Files.walk(java.nio.file.Path.of(a[0]))) {
        bytes = files.filter(p -> p.toString().endsWith(".parquet")).mapToLong(p -> p.toFile().length()).sum();
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
      double best = Double.MAX_VALUE;
      for (int r = 0; r < reps; r++) {
        long t0 = System.nanoTime();
        spark.read().parquet(a[0]).write().format("noop").mode(SaveMode.Overwrite).save();
        double s = (System.nanoTime() - t0) / 1e9;
        best = Math.min(best, s);
        System.out.printf(Locale.ROOT, "scan: %,d rows, %.2f GB in %.2f s (%,.0f rows/s, %.2f GB/s)%n", rows, bytes / 1e9,
            s, rows / s, bytes / 1e9 / s);
      }
      System.out.printf(Locale.ROOT, "scan.tokens_per_s %.1f%n", rows / best);
      System.out.printf(Locale.ROOT, "scan.gbs %.3f%n", bytes / 1e9 / best);
    } finally {
      spark.stop();
    }
  }
}
