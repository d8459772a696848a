package org.moespark.jobs;

import org.apache.spark.sql.SparkSession;

/**
 * The Spark session a job runs in. Under {@code spark-submit} (or when a session already exists, as
 * in tests and notebooks) that session is used and left running; otherwise a local session is
 * created ({@code --master}, default {@code local[*]}) with {@code MoeExtensions} among its
 * {@code spark.sql.extensions}, and stopped by {@link #close()}.
 */
final class JobSession implements AutoCloseable {
  private final SparkSession spark;
  private final boolean owned;

  private JobSession(SparkSession spark, boolean owned) {
    this.spark = spark;
    this.owned = owned;
  }

  /**
   * Opens the session for a job.
   *
   * @param appName Spark application name (used only when a session is created)
   * @param master the {@code --master} option, or null: then {@code spark.master} from spark-submit,
   *     else {@code local[*]}
   */
  static JobSession open(String appName, String master) {
    SparkSession existing = SparkSession.getActiveSession().isDefined()
        ? SparkSession.getActiveSession().get()
        : SparkSession.getDefaultSession().isDefined() ? SparkSession.getDefaultSession().get() : null;
    if (existing != null) {
      if (master != null && !master.equals(existing.sparkContext().master())) {
        throw new Main.UsageException("--master " + master + " asked for, but a session with master "
            + existing.sparkContext().master() + " is already running in this JVM");
      }
      return new JobSession(existing, false);
    }
    SparkSession.Builder b = SparkSession.builder().appName(appName);
    // the extension, not a later MoeExtensions.install: only an extension can add MoeRowsRule (a columnar
    // rule: result arrays to rows in bulk), and a session's columnar rules are fixed when it is created
    b.config(EXTENSIONS, withMoeExtensions(System.getProperty(EXTENSIONS)));
    if (master != null) {
      b.master(master);
    } else if (System.getProperty("spark.master") == null) {
      b.master("local[*]");
    }
    return new JobSession(b.getOrCreate(), true);
  }

  static final String EXTENSIONS = "spark.sql.extensions";

  /** {@code spark.sql.extensions} with {@code MoeExtensions} added unless listed ({@code have} may be null or empty). */
  static String withMoeExtensions(String have) {
    String ext = org.moespark.spark.MoeExtensions.class.getName();
    String h = have == null ? "" : have.trim();
    if (h.isEmpty()) {
      return ext;
    }
    return java.util.Arrays.asList(h.split("\\s*,\\s*")).contains(ext) ? h : h + "," + ext;
  }

  SparkSession spark() {
    return spark;
  }

  @Override
  public void close() {
    if (owned) {
      spark.stop();
    }
  }
}
