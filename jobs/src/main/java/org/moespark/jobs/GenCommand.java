package org.moespark.jobs;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Set;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@code moe gen embeddings|model}: synthetic inputs.
 *
 * <pre>
 * moe gen embeddings --rows N --dim D [--distribution normal|uniform|clustered] [--seed S]
 *                    [--clusters C] [--spread X] --output PARQUET [--partitions P] [--overwrite] [--master M]
 * </pre>
 *
 * writes Parquet with {@code id bigint} (0..N-1) and {@code embedding array<float>} (D values) made
 * by {@link EmbeddingGenerator}: identical for a seed whatever P and the cluster are.
 *
 * <p>Fault-injection hook for the cluster tests: the Spark conf key
 * {@value #TASK_DELAY_KEY} (milliseconds, default 0) makes every task sleep that long before it
 * produces rows, so that a test can kill a Worker while the job runs.
 */
final class GenCommand implements Main.Command {
  /** Spark conf key: per-task sleep in ms before producing rows (tests only). */
  static final String TASK_DELAY_KEY = "spark.moespark.jobs.testTaskDelayMs";

  /** Schema of a generated embeddings data set. */
  static final StructType EMBEDDINGS_SCHEMA = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("embedding", DataTypes.createArrayType(DataTypes.FloatType, false), false);

  /**
   * Schema with {@code --encoding binary}: each embedding as {@code 4·dim} bytes of little-endian float32
   * (one Parquet value per row: Spark's reader copies it in one piece, where an {@code array<float>} costs a
   * repetition and a definition level per float; {@code moe_score} reads both).
   */
  static final StructType EMBEDDINGS_BINARY_SCHEMA = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("embedding", DataTypes.BinaryType, false);

  @Override
  public String summary() {
    return "generate synthetic inputs: 'gen embeddings' (Parquet) or 'gen model' (tiny HF MoE checkpoint)";
  }

  @Override
  public int run(String[] args, PrintStream out) throws Exception {
    if (args.length == 0 || args[0].equals("--help")) {
      usage(out);
      return args.length == 0 ? 2 : 0;
    }
    String what = args[0];
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    switch (what) {
      case "embeddings":
        return embeddings(rest, out);
      case "model":
        return GenModel.run(rest, out);
      default:
        throw new Main.UsageException("unknown target '" + what + "': expected 'embeddings' or 'model'");
    }
  }

  private static void usage(PrintStream out) {
    out.println("usage: moe gen embeddings --rows N --dim D [--distribution normal|uniform|clustered] [--seed S]");
    out.println("                          [--clusters C (16)] [--spread X (0.1)] --output PARQUET [--partitions P]");
    out.println("                          [--encoding array|binary (array<float>, or float32 little-endian bytes)]");
    out.println("                          [--overwrite] [--master M]");
    out.println("       moe gen model --family mixtral|qwen2_moe|qwen3_moe|olmoe|deepseek_v3|gpt_oss --output DIR");
    out.println("                     [--hidden H] [--experts E] [--top-k K] [--intermediate I] [--layers L]");
    out.println("                     [--dtype f32|bf16] [--seed S] [--overwrite]");
    out.println("                     [--shared-intermediate N (qwen2_moe)] [--groups G --topk-group T (deepseek_v3)]");
  }

  private static int embeddings(String[] argv, PrintStream out) {
    Args a = new Args("gen embeddings", argv,
        Set.of("rows", "dim", "distribution", "seed", "clusters", "spread", "output", "partitions", "master",
            "encoding"),
        Set.of("overwrite"));
    if (!a.positional().isEmpty()) {
      throw new Main.UsageException("unexpected arguments: " + String.join(" ", a.positional()));
    }
    long rows = a.requiredLong("rows", 0, Long.MAX_VALUE - 1);
    int dim = a.requiredInt("dim", 1, 1 << 20);
    EmbeddingGenerator.Distribution dist =
        EmbeddingGenerator.Distribution.parse(a.choice("distribution", "normal", "normal", "uniform", "clustered"));
    long seed = a.longValue("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE);
    int clusters = a.intValue("clusters", 16, 1, 1 << 20);
    double spread = a.doubleValue("spread", 0.1, 0, 1e6);
    String output = a.required("output");
    boolean binary = a.choice("encoding", "array", "array", "binary").equals("binary");
    EmbeddingGenerator gen = new EmbeddingGenerator(dim, seed, dist, clusters, spread);

    try (JobSession js = JobSession.open("moe gen embeddings", a.string("master", null))) {
      SparkSession spark = js.spark();
      int partitions = a.intValue("partitions", Math.max(1, spark.sparkContext().defaultParallelism()), 1, 1 << 20);
      long delayMs = Long.parseLong(spark.conf().get(TASK_DELAY_KEY, "0"));
      long t0 = System.nanoTime();
      Dataset<Row> df = embeddings(spark, gen, rows, partitions, delayMs, binary);
      df.write().mode(a.flag("overwrite") ? SaveMode.Overwrite : SaveMode.ErrorIfExists).parquet(output);
      double s = (System.nanoTime() - t0) / 1e9;
      out.printf("gen embeddings: %d rows x %d (%s, seed %d%s) in %d partitions -> %s  [%.1f s, %.0f rows/s]%n",
          rows, dim, dist.name().toLowerCase(java.util.Locale.ROOT), seed, binary ? ", binary float32 LE" : "",
          partitions, output, s, rows / Math.max(s, 1e-9));
    }
    return 0;
  }

  /** {@link #embeddings(SparkSession, EmbeddingGenerator, long, int, long, boolean)} as {@code array<float>}. */
  static Dataset<Row> embeddings(SparkSession spark, EmbeddingGenerator gen, long rows, int partitions, long delayMs) {
    return embeddings(spark, gen, rows, partitions, delayMs, false);
  }

  /**
   * The embeddings data set (schema {@link #EMBEDDINGS_SCHEMA}, or {@link #EMBEDDINGS_BINARY_SCHEMA} when
   * {@code binary}) over {@code spark.range(0, rows)} in {@code partitions} partitions; rows are made on the
   * executors.
   */
  static Dataset<Row> embeddings(SparkSession spark, EmbeddingGenerator gen, long rows, int partitions, long delayMs,
      boolean binary) {
    MapPartitionsFunction<Long, Row> f = ids -> {
      if (delayMs > 0) {
        Thread.sleep(delayMs);
      }
      return new Iterator<Row>() {
        @Override
        public boolean hasNext() {
          return ids.hasNext();
        }

        @Override
        public Row next() {
          long id = ids.next();
          float[] e = gen.row(id);
          return RowFactory.create(id, binary ? littleEndian(e) : e);
        }
      };
    };
    return spark.range(0, rows, 1, partitions)
        .mapPartitions(f, Encoders.row(binary ? EMBEDDINGS_BINARY_SCHEMA : EMBEDDINGS_SCHEMA));
  }

  /** {@code v} as little-endian float32 bytes. */
  static byte[] littleEndian(float[] v) {
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * v.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(v);
    return b.array();
  }
}
