package org.moespark.jobs;

import org.apache.spark.sql.SparkSession;

/** The one local Spark session of the jobs test JVM (cheap settings; never stopped by a test). */
public final class TestSpark {
  private static SparkSession spark;

  private TestSpark() {}

  public static synchronized SparkSession session() {
    if (spark == null) {
      spark = SparkSession.builder()
          .master("local[2]")
          .appName("moespark-jobs-tests")
          .config("spark.ui.enabled", "false")
          .config("spark.sql.shuffle.partitions", "2")
          .config("spark.driver.host", "127.0.0.1")
          .getOrCreate();
    }
    return spark;
  }
}
