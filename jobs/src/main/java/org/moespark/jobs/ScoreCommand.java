package org.moespark.jobs;

import static org.apache.spark.sql.functions.call_function;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.map;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.TaskEndReason;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.execution.QueryExecution;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanExec;
import org.apache.spark.sql.execution.adaptive.QueryStageExec;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.util.QueryExecutionListener;
import org.moespark.layer.GemmPrecision;
import org.moespark.spark.MoeConf;
import org.moespark.spark.MoeExtensions;
import org.moespark.spark.MoeScoreExec;
import org.moespark.spark.MoeScoreExpr;

/**
 * {@code moe score}: runs MoE block {@code --layer} of a Hugging Face checkpoint over an embeddings
 * data set with the batched {@code moe_score_routed} operator and writes the scored data set.
 *
 * <pre>
 * moe score --model DIR --layer N --input PARQUET --output PARQUET [--input-col embedding] [--id-col id]
 *           [--backend auto|cpu|gpu] [--batch-rows N] [--compute fp32|bf16] [--gemm bf16|fp8|mxfp4|nvfp4]
 *           [--bad-rows error|skip|null] [--partitions P] [--overwrite] [--master M] [--progress-seconds S] [--format parquet|noop]
 *           [--explain]
 * </pre>
 *
 * Output (the contract {@code moe stats} reads): Parquet with the id column (its input name and type),
 * {@code output array<float>} (the block output, hidden values), {@code topk_ids array<int>} and
 * {@code topk_weights array<float>} (K each, in router order: highest score first). One row is one token.
 * {@code --backend/--batch-rows/--compute/--gemm/--bad-rows} become the per-call options of {@code moe_score_routed}
 * (so they override {@code spark.moespark.*} session settings for this job only); unset ones fall back to the
 * session conf. {@code --model} is any URI {@code moe_score} accepts (a local directory visible to every
 * executor, an HDFS/S3 URI, or a directory shipped with {@code --files}).
 *
 * <p>{@code --format noop} runs the whole job but discards the rows (Spark's {@code noop} sink: benchmarks
 * that must not measure the Parquet writer or fill the disk). {@code --explain} prints the executed physical
 * plan and the SQL metrics of the {@code MoeScoreExec} operator(s) after the job (which backend ran, where
 * the time went). Unless {@code spark.sql.parquet.columnarReaderBatchSize} is set, a job that may run on
 * the GPU reads Parquet in batches of the GPU batch size ({@code --batch-rows}, else
 * {@link MoeConf#DEFAULT_GPU_BATCH_ROWS}): input batches are never merged, so the reader's batch bounds the
 * rows per GPU call.
 *
 * <p>While the job runs a line of progress is printed every {@code --progress-seconds} (rows written,
 * rows/s; one row = one token, so tokens/s is the same number; expert assignments/s = K × that). Records
 * are counted from successful tasks of this job only, once per (stage, partition), so retried tasks after
 * a lost executor are not double counted.
 *
 * <p>Fault-injection hook for the cluster tests: the Spark conf key {@value GenCommand#TASK_DELAY_KEY}
 * (milliseconds, default 0) makes every scoring task sleep that long before it reads its rows.
 */
final class ScoreCommand implements Main.Command {
  @Override
  public String summary() {
    return "run one MoE layer over an embeddings Parquet (moe_score_routed): id, output, topk_ids, topk_weights";
  }

  @Override
  public int run(String[] argv, PrintStream out) throws Exception {
    if (argv.length == 1 && argv[0].equals("--help")) {
      out.println("usage: moe score --model DIR --layer N --input PARQUET --output PARQUET [--input-col embedding]");
      out.println("                 [--id-col id] [--backend auto|cpu|gpu] [--batch-rows N] [--compute fp32|bf16]");
      out.println("                 [--gemm bf16|fp8|mxfp4|nvfp4 (GPU expert GEMMs)] [--bad-rows error|skip|null]");
      out.println("                 [--partitions P] [--overwrite] [--master M]");
      out.println("                 [--progress-seconds S (10; 0 = off)] [--format parquet|noop] [--explain]");
      out.println("                 [--repeat N (noop only: run N times in this session; the later runs are warm)]");
      return 0;
    }
    Args a = new Args("score", argv, Set.of("model", "layer", "input", "output", "input-col", "id-col", "backend",
        "batch-rows", "compute", "gemm", "bad-rows", "partitions", "master", "progress-seconds", "format", "repeat"),
        Set.of("overwrite", "explain"));
    if (!a.positional().isEmpty()) {
      throw new Main.UsageException("unexpected arguments: " + String.join(" ", a.positional()));
    }
    Options o = new Options(a.required("model"), a.requiredInt("layer", 0, 1 << 20), a.required("input"),
        a.required("output"), a.string("input-col", "embedding"), a.string("id-col", "id"), callOptions(a),
        a.has("partitions") ? a.intValue("partitions", 0, 1, 1 << 20) : 0, a.flag("overwrite"));
    double progressSeconds = a.doubleValue("progress-seconds", 10, 0, 86400);
    String format = a.choice("format", "parquet", "parquet", "noop");
    boolean explain = a.flag("explain");
    int repeat = a.has("repeat") ? a.intValue("repeat", 1, 1, 100) : 1;
    if (repeat > 1 && !format.equals("noop")) {
      throw new Main.UsageException("--repeat " + repeat + " needs --format noop (a Parquet output is written once)");
    }

    try (JobSession js = JobSession.open("moe score", a.string("master", null))) {
      SparkSession spark = js.spark();
      MoeExtensions.install(spark);
      String backend = o.callOptions().getOrDefault("backend", spark.conf().get(MoeConf.BACKEND, "auto"));
      if (!backend.equals("cpu") && !spark.conf().contains(READER_BATCH)) {
        String rows = o.callOptions().getOrDefault("batchRows", spark.conf().get(MoeConf.BATCH_ROWS,
            Integer.toString(MoeConf.DEFAULT_GPU_BATCH_ROWS)));
        spark.conf().set(READER_BATCH, rows);
      }
      Dataset<Row> in = spark.read().parquet(o.input());
      long rows = in.count(); // from Parquet footers
      Dataset<Row> scored = scored(in, o);
      for (int run = 1; run <= repeat; run++) {
        if (repeat > 1) {
          out.printf(Locale.ROOT, "score: run %d of %d%s%n", run, repeat, run == 1 ? " (cold: JIT, model load)" : " (warm)");
        }
        runOnce(spark, scored, rows, o, format, explain, progressSeconds, out);
      }
    }
    return 0;
  }

  /**
   * One scoring job: writes (or discards) {@code scored}, the {@code rows} input rows scored, then prints what
   * it did.
   */
  private static void runOnce(SparkSession spark, Dataset<Row> scored, long rows, Options o, String format,
      boolean explain, double progressSeconds, PrintStream out) throws InterruptedException {
    PlanCapture plans = new PlanCapture();
    spark.listenerManager().register(plans);
    Progress progress = new Progress(spark, rows, out, progressSeconds);
    long t0 = System.nanoTime();
    try {
      progress.start();
      if (format.equals("noop")) {
        scored.write().format("noop").mode(SaveMode.Overwrite).save();
      } else {
        scored.write().mode(o.overwrite() ? SaveMode.Overwrite : SaveMode.ErrorIfExists).parquet(o.output());
      }
    } finally {
      progress.stop();
    }
    double s = (System.nanoTime() - t0) / 1e9;
    long written = format.equals("noop") ? plans.outputRows() : spark.read().parquet(o.output()).count();
    spark.listenerManager().unregister(plans);
    if (explain) {
      plans.print(out);
    }
    out.printf(Locale.ROOT, "score: %,d rows in, %,d rows out (model %s, layer %d, input column %s, options %s)%n",
        rows, written, o.model(), o.layer(), o.inputCol(), o.callOptions().isEmpty() ? "session defaults"
            : o.callOptions());
    out.printf(Locale.ROOT, "score: %.1f s, %,.0f rows/s = tokens/s -> %s%n", s, written / Math.max(s, 1e-9),
        format.equals("noop") ? "noop (discarded)" : o.output());
  }

  static final String READER_BATCH = "spark.sql.parquet.columnarReaderBatchSize";

  /** Keeps the executed plan of the write and prints it with the MoeScoreExec metrics ({@code --explain}). */
  static final class PlanCapture implements QueryExecutionListener {
    private volatile QueryExecution last;

    @Override
    public void onSuccess(String funcName, QueryExecution qe, long durationNs) {
      List<MoeScoreExec> found = new ArrayList<>();
      collect(qe.executedPlan(), found);
      if (!found.isEmpty()) { // the scoring write, not the row count after it
        last = qe;
      }
    }

    @Override
    public void onFailure(String funcName, QueryExecution qe, Exception exception) {}

    /** Rows out of the scoring operator(s) of the captured write, or -1 when none was captured. */
    long outputRows() {
      await();
      if (last == null) {
        return -1;
      }
      List<MoeScoreExec> found = new ArrayList<>();
      collect(last.executedPlan(), found);
      return found.isEmpty() ? -1 : found.get(0).metricsInOrder().get("numOutputRows").value();
    }

    private void await() {
      // listener events are delivered asynchronously: give the bus a moment
      for (int i = 0; i < 50 && last == null; i++) {
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
    }

    void print(PrintStream out) {
      await();
      if (last == null) {
        out.println("score: no executed plan captured");
        return;
      }
      SparkPlan p = last.executedPlan();
      out.println("score: executed plan:");
      out.println(p.treeString());
      List<MoeScoreExec> found = new ArrayList<>();
      collect(p, found);
      for (MoeScoreExec e : found) {
        out.println("score: MoeScoreExec SQL metrics:");
        e.metricsInOrder().forEach((name, m) -> {
          boolean nanos = "nsTiming".equals(m.metricType());
          out.printf(Locale.ROOT, "score:   %-18s %-14s %s%n", name, nanos
              ? String.format(Locale.ROOT, "%.1f ms", m.value() / 1e6) : String.format(Locale.ROOT, "%,d", m.value()),
              m.name().isDefined() ? m.name().get() : "");
        });
      }
    }

    private static void collect(SparkPlan p, List<MoeScoreExec> found) {
      if (p instanceof MoeScoreExec e) {
        found.add(e);
      }
      if (p instanceof AdaptiveSparkPlanExec a) {
        collect(a.executedPlan(), found);
      }
      if (p instanceof QueryStageExec q) {
        collect(q.plan(), found);
      }
      scala.collection.Iterator<SparkPlan> it = p.children().iterator();
      while (it.hasNext()) {
        collect(it.next(), found);
      }
    }
  }

  /** The validated options of one score job. {@code partitions} 0 = keep the input partitioning. */
  record Options(String model, int layer, String input, String output, String inputCol, String idCol,
      Map<String, String> callOptions, int partitions, boolean overwrite) {}

  private static Map<String, String> callOptions(Args a) {
    Map<String, String> m = new LinkedHashMap<>();
    if (a.has("backend")) {
      m.put("backend", a.choice("backend", null, "auto", "cpu", "gpu"));
    }
    if (a.has("batch-rows")) {
      m.put("batchRows", Integer.toString(a.intValue("batch-rows", 0, 1, Integer.MAX_VALUE)));
    }
    if (a.has("compute")) {
      m.put("compute", a.choice("compute", null, "fp32", "bf16"));
    }
    if (a.has("gemm")) {
      m.put("gemm", a.choice("gemm", null, GemmPrecision.names()));
    }
    if (a.has("bad-rows")) {
      m.put("badRows", a.choice("bad-rows", null, "error", "skip", "null"));
    }
    return m;
  }

  /**
   * The scored data set: {@code idCol, output, topk_ids, topk_weights} for every row of {@code in}
   * (lazy; nothing runs until it is written or collected).
   *
   * @throws Main.UsageException when a column is missing (naming it and the columns that exist)
   */
  static Dataset<Row> scored(Dataset<Row> in, Options o) {
    StructType schema = in.schema();
    for (String c : new String[] {o.idCol(), o.inputCol()}) {
      if (!List.of(schema.fieldNames()).contains(c)) {
        throw new Main.UsageException("input " + o.input() + " has no column '" + c + "' (columns: "
            + String.join(", ", schema.fieldNames()) + ")");
      }
    }
    if (o.partitions() > 0) {
      in = in.repartition(o.partitions());
    }
    long delayMs = Long.parseLong(in.sparkSession().conf().get(GenCommand.TASK_DELAY_KEY, "0"));
    if (delayMs > 0) { // fault-injection hook of the cluster tests: slow tasks, so a Worker can be killed mid-job
      MapPartitionsFunction<Row, Row> sleep = rows -> {
        Thread.sleep(delayMs);
        return rows;
      };
      in = in.mapPartitions(sleep, Encoders.row(schema));
    }
    List<Column> args = new ArrayList<>(List.of(col(RoutingStats.quote(o.inputCol())), lit(o.model()), lit(o.layer())));
    if (!o.callOptions().isEmpty()) {
      List<Column> kv = new ArrayList<>();
      o.callOptions().forEach((k, v) -> {
        kv.add(lit(k));
        kv.add(lit(v));
      });
      args.add(map(kv.toArray(new Column[0])));
    }
    Column r = call_function(MoeScoreExpr.ROUTED_NAME, args.toArray(new Column[0]));
    return in.select(col(RoutingStats.quote(o.idCol())), r.as("r"))
        .select(col(RoutingStats.quote(o.idCol())), col("r.output").as("output"), col("r.topk_ids").as("topk_ids"),
            col("r.topk_weights").as("topk_weights"));
  }

  /** Counts records written by successful tasks and prints a progress line now and then. */
  static final class Progress extends SparkListener {
    private final SparkSession spark;
    private final long total;
    private final PrintStream out;
    private final double everySeconds;
    private final Map<String, Long> done = new ConcurrentHashMap<>();
    private volatile boolean running;
    private Thread printer;
    private long t0;

    Progress(SparkSession spark, long total, PrintStream out, double everySeconds) {
      this.spark = spark;
      this.total = total;
      this.out = out;
      this.everySeconds = everySeconds;
    }

    @Override
    public void onTaskEnd(SparkListenerTaskEnd e) {
      TaskEndReason reason = e.reason();
      if (e.taskInfo() == null || e.taskMetrics() == null || !(reason instanceof org.apache.spark.Success$)) {
        return;
      }
      long n = e.taskMetrics().outputMetrics().recordsWritten();
      if (n > 0) {
        done.put(e.stageId() + "/" + e.taskInfo().partitionId(), n);
      }
    }

    long rowsDone() {
      long s = 0;
      for (long v : done.values()) {
        s += v;
      }
      return s;
    }

    void start() {
      t0 = System.nanoTime();
      spark.sparkContext().addSparkListener(this);
      if (everySeconds <= 0) {
        return;
      }
      running = true;
      printer = new Thread(() -> {
        long sleepMs = (long) (everySeconds * 1000);
        while (running) {
          try {
            Thread.sleep(sleepMs);
          } catch (InterruptedException ie) {
            return;
          }
          if (running) {
            print();
          }
        }
      }, "moe-score-progress");
      printer.setDaemon(true);
      printer.start();
    }

    void print() {
      long n = rowsDone();
      double s = (System.nanoTime() - t0) / 1e9;
      out.printf(Locale.ROOT, "score: %,d / %,d rows (%.0f%%)  %,.0f rows/s = tokens/s  [%.0f s]%n", n, total,
          total == 0 ? 100.0 : 100.0 * n / total, n / Math.max(s, 1e-9), s);
    }

    void stop() throws InterruptedException {
      running = false;
      if (printer != null) {
        printer.interrupt();
        printer.join(2000);
      }
      spark.sparkContext().removeSparkListener(this);
    }
  }
}
