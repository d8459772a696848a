package org.moespark.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.spark.sql.SparkSession;

/** The one local SparkSession of the spark-ops test JVM, with the extension and the test loader. */
final class SparkTestSession {
  private static SparkSession spark;
  private static Path root;

  private SparkTestSession() {}

  static synchronized SparkSession get() {
    if (spark == null) {
      spark = SparkSession.builder()
          .master("local[2]")
          .appName("moespark-spark-ops-tests")
          .config("spark.ui.enabled", "false")
          .config("spark.sql.shuffle.partitions", "2")
          .config("spark.sql.adaptive.enabled", "false")
          .config("spark.driver.host", "127.0.0.1")
          .config("spark.sql.warehouse.dir", tmp().resolve("warehouse").toUri().toString())
          .config("spark.sql.extensions", MoeExtensions.class.getName())
          .config(MoeConf.LOADER, TestLoader.class.getName())
          .config(MoeConf.BACKEND, "cpu")
          .getOrCreate();
      spark.sparkContext().setLogLevel("WARN");
    }
    return spark;
  }

  /** A per-JVM scratch directory. */
  static synchronized Path tmp() {
    if (root == null) {
      try {
        root = Files.createTempDirectory("moespark-spark-test");
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return root;
  }
}
