package org.moespark.spark;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.apache.spark.sql.SparkSession;

/**
 * The Spark host work of the GPU scoring path, without a GPU: a score job over an embeddings Parquet whose
 * scorer ({@link Loader}: y = x, expert 0 with weight 1) runs behind {@link HostStaging}, so reading,
 * packing into slots, unpacking and {@code MoeRows} are what the job spends its time on. For profiling the
 * host side where no device is at hand (add {@code -XX:StartFlightRecording=...}, then
 * {@code tools/bench/jfr_hot.py}); the numbers are the build machine's, not the GPU host's.
 *
 * <pre>java -cp spark-ops/target/test-classes:spark-ops/target/classes:... \
 *     org.moespark.spark.HostPathBench PARQUET [PARQUET...]   (-Dspark.sql.parquet.columnarReaderBatchSize=N)</pre>
 * Each input: its embedding width is read from the schema's first row; 3 noop jobs, rows/s of each.
 */
public final class HostPathBench {
  private HostPathBench() {}

  public static void main(String[] a) throws Exception {
    if (a.length == 0) {
      System.err.println("usage: HostPathBench PARQUET [PARQUET...]");
      System.exit(2);
    }
    SparkSession s = SparkSession.builder().appName("host path bench").master(System.getProperty("spark.master", "local[*]"))
        .config("spark.sql.extensions", MoeExtensions.class.getName()).config(MoeConf.LOADER, Loader.class.getName())
        .config(MoeConf.BACKEND, "cpu").getOrCreate();
    Path dir = Files.createTempDirectory("host-path-bench");
    try {
      for (String in : a) {
        var df = s.read().parquet(in);
        long rows = df.count();
        Object e = df.select("embedding").head().get(0);
        int hidden = e instanceof byte[] b ? b.length / 4 : ((scala.collection.Seq<?>) e).size();
        Path model = TestLoader.write(dir.resolve("model-" + hidden), hidden, 1, 1, 5, false, true); // hidden_size
        for (int rep = 0; rep < 3; rep++) {
          long t0 = System.nanoTime();
          df.selectExpr("id", "moe_score_routed(embedding, '" + model + "', 0) AS r")
              .selectExpr("id", "r.output", "r.topk_ids", "r.topk_weights").write().format("noop").mode("overwrite").save();
          double sec = (System.nanoTime() - t0) / 1e9;
          System.out.printf(Locale.ROOT, "host path: %s (hidden %d), run %d: %.2f s, %,.0f rows/s%n", in, hidden, rep + 1,
              sec, rows / sec);
        }
      }
    } finally {
      s.stop();
    }
  }

  /** Loads the identity scorer (width from the model's config.json), staged on the host. */
  public static final class Loader implements ScorerLoader {
    @Override
    public void validate(Path modelDir, int layer) {
      ModelChecks.checkConfig(modelDir, layer); // a config.json only: no weights
    }

    @Override
    public BatchScorer load(Path modelDir, int layer, Options options) {
      int hidden = ModelChecks.checkConfig(modelDir, layer).get("hidden_size").asInt();
      return new BatchScorer() {
        @Override
        public int hiddenSize() {
          return hidden;
        }

        @Override
        public int topK() {
          return 1;
        }

        @Override
        public String backend() {
          return "cpu";
        }

        @Override
        public Scores score(float[] x, int rows) {
          float[] w = new float[rows];
          java.util.Arrays.fill(w, 1f);
          return new Scores(rows, hidden, 1, x.clone(), new int[rows], w, 0, 0, 0);
        }

        @Override
        public boolean staged() {
          return true;
        }

        @Override
        public Staging newStaging(int capacity) {
          return new HostStaging(this, capacity);
        }
      };
    }
  }
}
