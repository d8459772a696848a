package org.moespark.spark;

import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import org.moespark.layer.GemmPrecision;

/**
 * The Spark configuration keys of the batched {@code moe_score} operator. All are session (SQL) confs,
 * read on the driver when a query is planned, so {@code spark.conf.set(...)} takes effect for the next
 * query; each can be overridden per call by the optional options map of {@code moe_score} (key = the part
 * after {@code spark.moespark.}, e.g. {@code map('backend', 'cpu', 'batchRows', '1024')}).
 *
 * <table>
 *   <caption>keys</caption>
 *   <tr><th>key</th><th>default</th><th>meaning</th></tr>
 *   <tr><td>{@value #BACKEND}</td><td>auto</td><td>auto|cpu|gpu; auto uses the GPU when usable, else the
 *   CPU (reason logged); gpu fails when no GPU is usable</td></tr>
 *   <tr><td>{@value #BATCH_ROWS}</td><td>4096 on the CPU, 1024 on the GPU</td><td>most rows per call of
 *   the layer (on the GPU: rows per pinned staging slot); an input batch larger than this is scored in
 *   several calls. Input batches are not merged: raise
 *   {@code spark.sql.parquet.columnarReaderBatchSize} (Parquet) or
 *   {@code spark.sql.inMemoryColumnarStorage.batchSize} (row inputs) for larger GPU batches</td></tr>
 *   <tr><td>{@value #BAD_ROWS}</td><td>error</td><td>error|skip|null for null, wrong-width or
 *   non-finite input rows</td></tr>
 *   <tr><td>{@value #COMPUTE}</td><td>fp32</td><td>fp32|bf16 arithmetic of the layer</td></tr>
 *   <tr><td>{@value #GEMM}</td><td>(the executor JVM's {@code -Dmoespark.gpu.gemm}, else bf16)</td><td>bf16|fp8|
 *   mxfp4|nvfp4: operand precision of the GPU layer's expert GEMMs (block FP8, or FP4 weights dequantized inside
 *   the GEMM); the CPU backend does not use it</td></tr>
 *   <tr><td>{@value #LOADER}</td><td>{@value #DEFAULT_LOADER}</td><td>{@link ScorerLoader} class
 *   (tests, other model formats)</td></tr>
 * </table>
 */
public final class MoeConf {
  public static final String PREFIX = "spark.moespark.";
  public static final String BACKEND = PREFIX + "backend";
  public static final String BATCH_ROWS = PREFIX + "batchRows";
  public static final String BAD_ROWS = PREFIX + "badRows";
  public static final String COMPUTE = PREFIX + "compute";
  public static final String GEMM = PREFIX + "gemm";
  public static final String LOADER = PREFIX + "loader";

  public static final String DEFAULT_LOADER = "org.moespark.spark.MoeLayerLoader";
  /** Rows per layer call on the CPU when {@value #BATCH_ROWS} is unset. */
  public static final int DEFAULT_BATCH_ROWS = 4096;
  /**
   * Rows per layer call on the GPU when {@value #BATCH_ROWS} is unset (and, in {@code moe score}, rows per
   * Parquet reader batch). A Spark job is bound by the host, not the GPU: on the H100 host a 2M-token
   * OLMoE-like {@code array<float>} job ran at 68k / 142k / 174k tok/s with 16384 / 4096 / 2048 rows per
   * batch in one run and at 194k / 211k / 214k with 4096 / 2048 / 1024 in the next (benchmarks/spark-gpu.md),
   * because Spark's nested Parquet reader and the packing slow
   * down when a batch's vectors (rows × hidden floats plus two int levels per float) fall out of the
   * caches, while the layer alone still does 1.1M tok/s at 1024 rows (2.5M at 16384). Each task's staging
   * (4 buffers of rows × hidden × 4 bytes, pinned and on the device) is 32 MiB for hidden 2048.
   */
  public static final int DEFAULT_GPU_BATCH_ROWS = 1024;

  private MoeConf() {}

  /**
   * The settings of one {@code moe_score} call, resolved on the driver.
   *
   * @param batchRows most rows per layer call; 0 = unset: the backend's default, decided on the executor
   *     ({@link #DEFAULT_BATCH_ROWS} on the CPU, {@link #DEFAULT_GPU_BATCH_ROWS} on the GPU)
   * @param gemm {@code bf16}, {@code fp8}, {@code mxfp4} or {@code nvfp4}; null = the executor's default
   */
  public record Settings(MoeBackend backend, int batchRows, BadRowPolicy badRows, String compute, String gemm,
      String loader) implements java.io.Serializable {
    public Settings {
      if (batchRows < 0) {
        throw new IllegalArgumentException(BATCH_ROWS + " must be > 0, got " + batchRows);
      }
    }

    /** Rows per layer call on the given backend ({@code gpu} true: the GPU). */
    public int batchRowsFor(boolean gpu) {
      return batchRows > 0 ? batchRows : gpu ? DEFAULT_GPU_BATCH_ROWS : DEFAULT_BATCH_ROWS;
    }
  }

  /**
   * Resolves the settings: the per-call {@code options} first, then {@code conf} (the session conf),
   * then the defaults.
   *
   * @param conf session conf lookup (returns null when unset)
   * @param options per-call overrides, keys without the prefix (may be empty)
   */
  public static Settings resolve(Function<String, String> conf, Map<String, String> options) {
    for (String k : options.keySet()) {
      if (!k.equals("backend") && !k.equals("batchRows") && !k.equals("badRows") && !k.equals("compute")
          && !k.equals("gemm")) {
        throw new IllegalArgumentException("moe_score options: unknown key '" + k
            + "' (expected backend, batchRows, badRows, compute, gemm)");
      }
    }
    String backend = pick(options, "backend", conf, BACKEND, "auto");
    String batch = pick(options, "batchRows", conf, BATCH_ROWS, "0"); // 0: the backend's default
    String bad = pick(options, "badRows", conf, BAD_ROWS, "error");
    String compute = pick(options, "compute", conf, COMPUTE, "fp32").trim().toLowerCase(Locale.ROOT);
    String gemm = pick(options, "gemm", conf, GEMM, null);
    if (gemm != null) {
      gemm = GemmPrecision.parse(gemm, GEMM).label();
    }
    String loader = conf.apply(LOADER);
    int batchRows;
    try {
      batchRows = Integer.parseInt(batch.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(BATCH_ROWS + " must be a positive integer, got '" + batch + "'", e);
    }
    if (batchRows <= 0 && !batch.equals("0")) {
      throw new IllegalArgumentException(BATCH_ROWS + " must be > 0, got " + batchRows);
    }
    if (!compute.equals("fp32") && !compute.equals("bf16")) {
      throw new IllegalArgumentException(COMPUTE + " must be fp32 or bf16, got '" + compute + "'");
    }
    return new Settings(MoeBackend.parse(backend, BACKEND), batchRows, BadRowPolicy.parse(bad, BAD_ROWS), compute,
        gemm, loader == null || loader.isBlank() ? DEFAULT_LOADER : loader.trim());
  }

  private static String pick(Map<String, String> options, String shortKey, Function<String, String> conf,
      String key, String dflt) {
    String v = options.get(shortKey);
    if (v == null) {
      v = conf.apply(key);
    }
    return v == null ? dflt : v;
  }

  /** Instantiates the loader class named by {@value #LOADER}. */
  public static ScorerLoader newLoader(String className) {
    Class<?> cls;
    try {
      cls = Class.forName(className, true, loaderClassLoader());
    } catch (ClassNotFoundException e) {
      throw new IllegalArgumentException(LOADER + ": class '" + className + "' not found on the class path", e);
    }
    if (!ScorerLoader.class.isAssignableFrom(cls)) {
      throw new IllegalArgumentException(LOADER + ": class '" + className + "' does not implement "
          + ScorerLoader.class.getName());
    }
    try {
      return (ScorerLoader) cls.getDeclaredConstructor().newInstance();
    } catch (ReflectiveOperationException e) {
      throw new IllegalArgumentException(LOADER + ": cannot instantiate '" + className
          + "' (needs a public no-arg constructor): " + e, e);
    }
  }

  private static ClassLoader loaderClassLoader() {
    ClassLoader cl = Thread.currentThread().getContextClassLoader();
    return cl != null ? cl : MoeConf.class.getClassLoader();
  }
}
