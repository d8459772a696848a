package org.moespark.jobs;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;

/**
 * Routing statistics of a scored data set, computed with Spark.
 *
 * <p>Input contract (what {@code moe score} writes): one row per token with an id column (any type),
 * {@code topk_ids array<int>} (K expert ids; {@code bigint}/{@code smallint}/{@code tinyint} arrays
 * are accepted too) and {@code topk_weights array<float>} (or {@code array<double>}), both of length
 * K in every row. An id of {@code -1} marks a dropped slot (a token routed to fewer than K experts,
 * as in the TE/Paddle routing maps): it is counted in {@link #droppedSlots} and ignored everywhere
 * else. Every other value is checked, and a violation fails with the offending row's id: null
 * arrays, lengths that differ (between the two arrays or from the other rows), ids below -1 or not
 * below the expert count, the same expert twice in one token, weights that are null, NaN, infinite
 * or negative.
 *
 * <p>Definitions (E experts, A = number of non-dropped slots = "assignments"):
 *
 * <ul>
 *   <li><b>load</b> of expert e: slots routed to e; <b>share</b> = load / A; <b>imbalance</b> = max
 *       load / mean load, mean = A / E (1 = perfectly balanced; E = everything on one expert);
 *   <li><b>load entropy</b>: {@code -Σ_e share_e ln share_e} in nats (0·ln 0 = 0), at most ln E;
 *   <li><b>token entropy</b>: the token's non-dropped weights normalised to sum 1, {@code -Σ p ln p}
 *       in nats, at most ln K; undefined (null, not counted) for a token whose weights sum to 0 or
 *       that has no slot left; its histogram has {@code bins} equal bins over [0, ln K];
 *   <li><b>top-k weight histogram</b>: each token's non-dropped weights sorted in decreasing order;
 *       rank 1 is the largest (independent of the slot order, which e.g. DeepSeek-V3 leaves
 *       unsorted); {@code bins} equal bins over [0, hi], hi = 1 when every weight is at most 1, else
 *       the largest weight rounded up to an integer (DeepSeek-V3 scales by 2.5); a weight equal to
 *       hi goes into the last bin;
 *   <li><b>co-activation</b> {@code C[a][b]} (a ≠ b): tokens whose top-k holds both a and b
 *       (symmetric); {@code C[e][e]}: tokens routed to e (equal to load[e]).
 * </ul>
 */
public final class RoutingStats {
  /** Default number of histogram bins. */
  public static final int DEFAULT_BINS = 20;

  /** Tokens (rows) of the input. */
  public final long tokens;
  /** K: length of every row's {@code topk_ids} (0 for an empty input). */
  public final int topK;
  /** E: the number of experts (given, or 1 + the largest id seen). */
  public final int experts;
  /** Non-dropped slots: the sum of {@link #load}. */
  public final long assignments;
  /** Slots whose id is -1. */
  public final long droppedSlots;
  /** Tokens per expert, length E. */
  public final long[] load;
  /** Sum of routing weights per expert, length E. */
  public final double[] weightSum;
  /** Co-activation counts, E × E, symmetric; the diagonal is {@link #load}. */
  public final long[][] coactivation;
  /** Number of histogram bins. */
  public final int bins;
  /** Tokens with a defined entropy (and so counted in the entropy histogram). */
  public final long tokensWithEntropy;
  /** Mean, minimum, maximum token entropy in nats (NaN when no token has one). */
  public final double entropyMean;
  public final double entropyMin;
  public final double entropyMax;
  /** Approximate 50th, 90th, 99th percentiles of the token entropy (Spark percentile_approx). */
  public final double[] entropyQuantiles;
  /** Upper end of the entropy histogram: ln K (1 when K ≤ 1). */
  public final double entropyHi;
  /** Token entropy histogram, {@link #bins} counts over [0, {@link #entropyHi}]. */
  public final long[] entropyHistogram;
  /** Upper end of the weight histograms. */
  public final double weightHi;
  /** Weight histograms: [rank-1][bin] over [0, {@link #weightHi}]; K rows. */
  public final long[][] weightHistogram;
  /** Mean weight at each rank 1..K (NaN where no token has that many slots). */
  public final double[] meanWeightByRank;
  /** Largest routing weight seen (NaN for an empty input). */
  public final double maxWeight;

  private RoutingStats(long tokens, int topK, int experts, long droppedSlots, long[] load, double[] weightSum,
      long[][] coactivation, int bins, long tokensWithEntropy, double entropyMean, double entropyMin, double entropyMax,
      double[] entropyQuantiles, long[] entropyHistogram, double weightHi, long[][] weightHistogram,
      double[] meanWeightByRank, double maxWeight) {
    this.tokens = tokens;
    this.topK = topK;
    this.experts = experts;
    this.droppedSlots = droppedSlots;
    this.load = load;
    this.weightSum = weightSum;
    this.coactivation = coactivation;
    this.bins = bins;
    this.tokensWithEntropy = tokensWithEntropy;
    this.entropyMean = entropyMean;
    this.entropyMin = entropyMin;
    this.entropyMax = entropyMax;
    this.entropyQuantiles = entropyQuantiles;
    this.entropyHistogram = entropyHistogram;
    this.weightHi = weightHi;
    this.weightHistogram = weightHistogram;
    this.meanWeightByRank = meanWeightByRank;
    this.maxWeight = maxWeight;
    this.entropyHi = topK > 1 ? Math.log(topK) : 1.0;
    long a = 0;
    for (long l : load) {
      a += l;
    }
    this.assignments = a;
  }

  /** Share of the assignments per expert (NaN when there are none). */
  public double share(int expert) {
    return (double) load[expert] / assignments;
  }

  /** Mean load A / E. */
  public double meanLoad() {
    return experts == 0 ? Double.NaN : (double) assignments / experts;
  }

  /** Max load / mean load (NaN when there are no assignments). */
  public double imbalance() {
    if (assignments == 0) {
      return Double.NaN;
    }
    return Arrays.stream(load).max().getAsLong() / meanLoad();
  }

  /** Entropy of the global expert load in nats. */
  public double loadEntropy() {
    if (assignments == 0) {
      return Double.NaN;
    }
    double h = 0;
    for (long l : load) {
      if (l > 0) {
        double p = (double) l / assignments;
        h -= p * Math.log(p);
      }
    }
    return h;
  }

  /** Load entropy / ln E (1 = uniform load; NaN when E ≤ 1 or no assignments). */
  public double loadEntropyNormalised() {
    return experts > 1 ? loadEntropy() / Math.log(experts) : Double.NaN;
  }

  /** Experts that received no token. */
  public int idleExperts() {
    int n = 0;
    for (long l : load) {
      if (l == 0) {
        n++;
      }
    }
    return n;
  }

  /** The summary as ordered (metric, value) pairs, the rows of the {@code summary} table. */
  public Map<String, Double> summary() {
    Map<String, Double> m = new LinkedHashMap<>();
    m.put("tokens", (double) tokens);
    m.put("top_k", (double) topK);
    m.put("experts", (double) experts);
    m.put("assignments", (double) assignments);
    m.put("dropped_slots", (double) droppedSlots);
    m.put("idle_experts", (double) idleExperts());
    m.put("min_load", experts == 0 ? Double.NaN : (double) Arrays.stream(load).min().getAsLong());
    m.put("max_load", experts == 0 ? Double.NaN : (double) Arrays.stream(load).max().getAsLong());
    m.put("mean_load", meanLoad());
    m.put("imbalance_max_over_mean", imbalance());
    m.put("load_entropy_nats", loadEntropy());
    m.put("load_entropy_normalised", loadEntropyNormalised());
    m.put("tokens_with_entropy", (double) tokensWithEntropy);
    m.put("token_entropy_mean_nats", entropyMean);
    m.put("token_entropy_min_nats", entropyMin);
    m.put("token_entropy_max_nats", entropyMax);
    m.put("token_entropy_p50_nats", entropyQuantiles[0]);
    m.put("token_entropy_p90_nats", entropyQuantiles[1]);
    m.put("token_entropy_p99_nats", entropyQuantiles[2]);
    m.put("max_weight", maxWeight);
    for (int r = 0; r < meanWeightByRank.length; r++) {
      m.put("mean_weight_rank_" + (r + 1), meanWeightByRank[r]);
    }
    return m;
  }

  // ------------------------------------------------------------------------------------------------
  // Computation

  /**
   * Computes the statistics. The input is scanned a few times; its validated projection is cached
   * (memory and disk) meanwhile.
   *
   * @param scored the scored data set (see the class comment)
   * @param idCol name of the id column, used to name bad rows
   * @param experts E, or 0 to use 1 + the largest id seen
   * @param bins histogram bins, 1..1000
   */
  public static RoutingStats compute(Dataset<Row> scored, String idCol, int experts, int bins) {
    if (experts < 0) {
      throw new IllegalArgumentException("experts: expected >= 0 (0 = infer), got " + experts);
    }
    if (bins < 1 || bins > 1000) {
      throw new IllegalArgumentException("bins: expected 1..1000, got " + bins);
    }
    Dataset<Row> p = prepare(scored, idCol).persist(StorageLevel.MEMORY_AND_DISK());
    try {
      return computePrepared(p, experts, bins);
    } finally {
      p.unpersist();
    }
  }

  /**
   * Per-token entropy: the id column and {@code entropy} (double, nats, null where undefined), one
   * row per input row, after the same checks of the column types as {@link #compute}.
   */
  public static Dataset<Row> tokenEntropy(Dataset<Row> scored, String idCol) {
    return prepare(scored, idCol).selectExpr("id AS " + quote(idCol), "h AS entropy");
  }

  static String quote(String name) {
    return "`" + name.replace("`", "``") + "`";
  }

  /** id, ids (array<int>), w (array<double>), w_raw (the input weights, for messages), vw (weights of non-dropped slots), h (token entropy). */
  private static Dataset<Row> prepare(Dataset<Row> scored, String idCol) {
    StructType schema = scored.schema();
    field(schema, idCol, "the id column (--id-col)");
    DataType idsType = field(schema, "topk_ids", "array<int>").dataType();
    DataType wType = field(schema, "topk_weights", "array<float>").dataType();
    if (!(idsType instanceof ArrayType) || !isIntegral(((ArrayType) idsType).elementType())) {
      throw new IllegalArgumentException("column topk_ids: expected array<int>, got " + idsType.simpleString());
    }
    if (!(wType instanceof ArrayType) || !isFloating(((ArrayType) wType).elementType())) {
      throw new IllegalArgumentException("column topk_weights: expected array<float>, got " + wType.simpleString());
    }
    return scored
        .selectExpr(quote(idCol) + " AS id", "CAST(topk_ids AS array<int>) AS ids",
            "CAST(topk_weights AS array<double>) AS w", "topk_weights AS w_raw")
        .selectExpr("id", "ids", "w", "w_raw",
            "filter(zip_with(ids, w, (i, x) -> IF(i >= 0, x, NULL)), x -> x IS NOT NULL) AS vw")
        .selectExpr("id", "ids", "w", "w_raw", "vw", "aggregate(vw, 0D, (a, x) -> a + x) AS s")
        .selectExpr("id", "ids", "w", "w_raw", "vw",
            "IF(size(vw) = 0 OR NOT (s > 0), CAST(NULL AS DOUBLE), "
                + "0D - aggregate(vw, 0D, (a, x) -> a + IF(x > 0, (x / s) * ln(x / s), 0D))) AS h");
  }

  private static StructField field(StructType schema, String name, String what) {
    for (StructField f : schema.fields()) {
      if (f.name().equals(name)) {
        return f;
      }
    }
    throw new IllegalArgumentException("column " + name + " (" + what + ") not found; the input has: "
        + String.join(", ", schema.fieldNames()));
  }

  private static boolean isIntegral(DataType t) {
    return t.equals(DataTypes.IntegerType) || t.equals(DataTypes.LongType) || t.equals(DataTypes.ShortType)
        || t.equals(DataTypes.ByteType);
  }

  private static boolean isFloating(DataType t) {
    return t.equals(DataTypes.FloatType) || t.equals(DataTypes.DoubleType);
  }

  private static RoutingStats computePrepared(Dataset<Row> p, int expertsArg, int bins) {
    // Job 1: validation and global facts in one aggregation. The rules are checked in this order;
    // the first one violated is reported with an example row (extra jobs only on failure).
    // "kmax" stands for K, the longest topk_ids; rows of another length are caught by kmin != kmax.
    List<String[]> rules = new ArrayList<>();
    rules.add(new String[] {"ids IS NULL", "topk_ids is null"});
    rules.add(new String[] {"w IS NULL", "topk_weights is null"});
    rules.add(new String[] {"size(ids) != size(w)", "topk_ids and topk_weights have different lengths",
        "size(ids)|size(topk_ids)", "size(w)|size(topk_weights)"});
    rules.add(new String[] {null, "topk_ids has a different length than other rows", "size(ids)|size(topk_ids)"});
    rules.add(new String[] {"exists(ids, x -> x IS NULL OR x < -1)", "topk_ids holds an id below -1 or null", "ids|topk_ids"});
    if (expertsArg > 0) {
      rules.add(new String[] {"exists(ids, x -> x >= " + expertsArg + ")",
          "topk_ids holds an id >= the expert count E = " + expertsArg + " (--experts)", "ids|topk_ids"});
    }
    rules.add(new String[] {"size(array_distinct(filter(ids, x -> x >= 0))) != size(filter(ids, x -> x >= 0))",
        "topk_ids names the same expert twice", "ids|topk_ids"});
    rules.add(new String[] {"exists(w, x -> x IS NULL OR isnan(x) OR x < 0 OR x = double('inf'))",
        "topk_weights holds a null, NaN, infinite or negative weight", "w_raw|topk_weights"});
    List<String> agg = new ArrayList<>(List.of(
        "count(1) AS tokens",
        "coalesce(min(size(ids)), 0) AS kmin",
        "coalesce(max(size(ids)), 0) AS kmax",
        "max(array_max(ids)) AS max_id",
        "coalesce(sum(size(filter(ids, x -> x = -1))), 0) AS dropped",
        "max(array_max(w)) AS max_w"));
    for (String[] rule : rules) {
      agg.add(rule[0] == null ? "0L" : "count_if(" + rule[0] + ")");
    }
    Row g = p.selectExpr(agg.toArray(new String[0])).first();
    long tokens = g.getLong(0);
    int kmin = g.getInt(1);
    int k = g.getInt(2);
    Integer maxId = g.isNullAt(3) ? null : g.getInt(3);
    long dropped = g.getLong(4);
    double maxW = g.isNullAt(5) ? Double.NaN : g.getDouble(5);
    for (int i = 0; i < rules.size(); i++) {
      String[] rule = rules.get(i);
      long n = g.getLong(6 + i);
      String cond = rule[0];
      String msg = rule[1];
      if (cond == null && kmin != k) {
        cond = "size(ids) != " + k;
        msg = msg + " (K = " + k + ")";
        n = p.where(cond).count();
      }
      if (n > 0) {
        throw new IllegalArgumentException(example(p, cond, msg, Arrays.copyOfRange(rule, 2, rule.length), n));
      }
    }
    int experts = expertsArg > 0 ? expertsArg : maxId == null ? 0 : Math.max(0, maxId + 1);

    // Job 2: co-activation; its diagonal is the load, and the weight of expert a is summed there.
    long[] load = new long[experts];
    double[] weightSum = new double[experts];
    long[][] co = new long[experts][experts];
    for (Row r : p.selectExpr("ids", "w", "posexplode(ids) AS (pos, a)").where("a >= 0")
        .selectExpr("a", "explode(filter(ids, x -> x >= 0)) AS b", "w[pos] AS wa")
        .groupBy("a", "b").agg(org.apache.spark.sql.functions.count("*"),
            org.apache.spark.sql.functions.expr("sum(IF(a = b, wa, 0D))")).collectAsList()) {
      int a = r.getInt(0);
      int b = r.getInt(1);
      co[a][b] = r.getLong(2);
      if (a == b) {
        load[a] = r.getLong(2);
        weightSum[a] = r.getDouble(3);
      }
    }

    // Job 3: token entropy, its histogram included (one count_if per bin).
    double entropyHi = k > 1 ? Math.log(k) : 1.0;
    List<String> ea = new ArrayList<>(List.of("count(h)", "avg(h)", "min(h)", "max(h)",
        "percentile_approx(h, array(0.5D, 0.9D, 0.99D), 10000)"));
    for (int b = 0; b < bins; b++) {
      ea.add("count_if(" + binExpr("h", entropyHi, bins) + " = " + b + ")");
    }
    Row e = p.selectExpr(ea.toArray(new String[0])).first();
    long withEntropy = e.getLong(0);
    double[] q = {Double.NaN, Double.NaN, Double.NaN};
    if (!e.isNullAt(4)) {
      List<Object> ql = e.getList(4);
      for (int i = 0; i < 3; i++) {
        q[i] = ((Number) ql.get(i)).doubleValue();
      }
    }
    long[] entropyHist = new long[bins];
    for (int b = 0; b < bins; b++) {
      entropyHist[b] = e.getLong(5 + b);
    }

    // Job 4: weights by rank (histogram counts and sums, from which the mean per rank follows).
    double weightHi = !(maxW > 1.0) ? 1.0 : Math.ceil(maxW);
    long[][] wHist = new long[k][bins];
    double[] sumByRank = new double[k];
    long[] nByRank = new long[k];
    for (Row r : p.selectExpr("posexplode(sort_array(vw, false)) AS (pos, x)")
        .selectExpr("pos", binExpr("x", weightHi, bins) + " AS bin", "x")
        .groupBy("pos", "bin").agg(org.apache.spark.sql.functions.count("*"), org.apache.spark.sql.functions.sum("x"))
        .collectAsList()) {
      int rank = r.getInt(0);
      wHist[rank][r.getInt(1)] = r.getLong(2);
      nByRank[rank] += r.getLong(2);
      sumByRank[rank] += r.getDouble(3);
    }
    double[] meanByRank = new double[k];
    for (int i = 0; i < k; i++) {
      meanByRank[i] = nByRank[i] == 0 ? Double.NaN : sumByRank[i] / nByRank[i];
    }

    return new RoutingStats(tokens, k, experts, dropped, load, weightSum, co, bins, withEntropy,
        e.isNullAt(1) ? Double.NaN : e.getDouble(1), e.isNullAt(2) ? Double.NaN : e.getDouble(2),
        e.isNullAt(3) ? Double.NaN : e.getDouble(3), q, entropyHist, weightHi, wHist, meanByRank, maxW);
  }

  /** Equal bins over [0, hi]; values at or above hi go to the last bin, tiny negatives to the first. */
  private static String binExpr(String x, double hi, int bins) {
    return "CAST(least(greatest(floor(" + x + " / " + hi + "D * " + bins + "), 0), " + (bins - 1) + ") AS INT)";
  }

  /**
   * "row with id=…: what; label = value …" for the first row where {@code condition} holds; each
   * {@code show} entry is "expression|label".
   */
  private static String example(Dataset<Row> p, String condition, String what, String[] show, long count) {
    List<String> cols = new ArrayList<>();
    cols.add("CAST(id AS STRING)");
    for (String x : show) {
      cols.add("CAST(" + x.split("\\|")[0] + " AS STRING)");
    }
    Row r = p.where(condition).selectExpr(cols.toArray(new String[0])).limit(1).first();
    StringBuilder sb = new StringBuilder("row with id=" + r.getString(0) + ": " + what);
    for (int i = 0; i < show.length; i++) {
      sb.append("; ").append(show[i].split("\\|")[1]).append(" = ").append(r.getString(i + 1));
    }
    if (count > 1) {
      sb.append(" (").append(count).append(" such rows)");
    }
    return sb.toString();
  }

  // ------------------------------------------------------------------------------------------------
  // Tables

  /**
   * Writes the tables as Parquet directories under {@code dir} (overwriting): {@code expert_load}
   * (expert, tokens, share, weight_sum), {@code coactivation} (expert_a, expert_b, tokens; non-zero
   * cells, both orders, diagonal included), {@code token_entropy_histogram} (bin, lo, hi, tokens),
   * {@code topk_weight_histogram} (rank, bin, lo, hi, count), {@code summary} (metric, value).
   */
  public void writeTables(SparkSession spark, String dir) {
    List<Row> rows = new ArrayList<>();
    for (int e = 0; e < experts; e++) {
      rows.add(RowFactory.create(e, load[e], share(e), weightSum[e]));
    }
    write(spark, rows, new StructType().add("expert", DataTypes.IntegerType, false)
        .add("tokens", DataTypes.LongType, false).add("share", DataTypes.DoubleType, false)
        .add("weight_sum", DataTypes.DoubleType, false), dir + "/expert_load");

    rows = new ArrayList<>();
    for (int a = 0; a < experts; a++) {
      for (int b = 0; b < experts; b++) {
        if (coactivation[a][b] != 0) {
          rows.add(RowFactory.create(a, b, coactivation[a][b]));
        }
      }
    }
    write(spark, rows, new StructType().add("expert_a", DataTypes.IntegerType, false)
        .add("expert_b", DataTypes.IntegerType, false).add("tokens", DataTypes.LongType, false), dir + "/coactivation");

    rows = new ArrayList<>();
    for (int b = 0; b < bins; b++) {
      rows.add(RowFactory.create(b, entropyHi * b / bins, entropyHi * (b + 1) / bins, entropyHistogram[b]));
    }
    write(spark, rows, new StructType().add("bin", DataTypes.IntegerType, false)
        .add("lo", DataTypes.DoubleType, false).add("hi", DataTypes.DoubleType, false)
        .add("tokens", DataTypes.LongType, false), dir + "/token_entropy_histogram");

    rows = new ArrayList<>();
    for (int r = 0; r < topK; r++) {
      for (int b = 0; b < bins; b++) {
        rows.add(RowFactory.create(r + 1, b, weightHi * b / bins, weightHi * (b + 1) / bins, weightHistogram[r][b]));
      }
    }
    write(spark, rows, new StructType().add("rank", DataTypes.IntegerType, false)
        .add("bin", DataTypes.IntegerType, false).add("lo", DataTypes.DoubleType, false)
        .add("hi", DataTypes.DoubleType, false).add("count", DataTypes.LongType, false), dir + "/topk_weight_histogram");

    rows = new ArrayList<>();
    for (Map.Entry<String, Double> m : summary().entrySet()) {
      rows.add(RowFactory.create(m.getKey(), m.getValue()));
    }
    write(spark, rows, new StructType().add("metric", DataTypes.StringType, false)
        .add("value", DataTypes.DoubleType, false), dir + "/summary");
  }

  private static void write(SparkSession spark, List<Row> rows, StructType schema, String path) {
    spark.createDataFrame(rows, schema).coalesce(1).write().mode(SaveMode.Overwrite).parquet(path);
  }
}
