package org.moespark.spark;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.param.ParamValidators;
import org.apache.spark.ml.util.DefaultParamsReader;
import org.apache.spark.ml.util.DefaultParamsWritable;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.ml.util.MLReader;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.moespark.layer.GemmPrecision;

/**
 * Spark ML {@link Transformer} that appends {@code moe_score(inputCol, modelPath, layer)} as
 * {@code outputCol} ({@code array<float>} of length {@code hidden_size}, the MoE block output without the
 * residual). It plans exactly as the SQL function does (same batched {@link MoeScoreExec}, same results
 * bit for bit), installing {@link MoeExtensions} on the dataset's session when needed.
 *
 * <p>Params: {@code inputCol} (default {@code "embedding"}; {@code array<float>}, {@code array<double>} or
 * little-endian float32 {@code binary}), {@code outputCol} (default {@code "moe_output"}),
 * {@code modelPath} (required; any URI {@link ModelResolver} accepts), {@code layer} (default 0),
 * {@code batchRows}, {@code backend} ({@code auto|cpu|gpu}), {@code gemm} ({@code bf16|fp8|mxfp4|nvfp4}, the GPU
 * expert GEMMs' precision) and {@code badRows} ({@code error|skip|null}):
 * when unset, the session's {@code spark.moespark.*} values (or their defaults) apply, see {@link MoeConf}.
 *
 * <p>Persistence: {@link DefaultParamsWritable} ({@code write().save(path)}) and {@link #read()}/{@link #load};
 * works inside a {@code Pipeline}/{@code PipelineModel}. The model itself is not copied: the saved stage
 * stores {@code modelPath}.
 */
public final class MoeScorer extends Transformer implements DefaultParamsWritable {
  private static final long serialVersionUID = 1L;

  private final String uid;
  private final Param<String> inputCol;
  private final Param<String> outputCol;
  private final Param<String> modelPath;
  private final IntParam layer;
  private final IntParam batchRows;
  private final Param<String> backend;
  private final Param<String> badRows;
  private final Param<String> gemm;

  public MoeScorer() {
    this(Identifiable$.MODULE$.randomUID("moeScorer"));
  }

  /** Used by {@link DefaultParamsReader} when loading a saved stage. */
  public MoeScorer(String uid) {
    this.uid = uid;
    inputCol = new Param<>(this, "inputCol", "input column: array<float>, array<double> or little-endian "
        + "float32 binary of hidden_size values");
    outputCol = new Param<>(this, "outputCol", "output column (array<float> of hidden_size values)");
    modelPath = new Param<>(this, "modelPath", "Hugging Face MoE model directory: local path, SparkFiles name "
        + "or Hadoop FileSystem URI");
    layer = new IntParam(this, "layer", "decoder layer whose MoE block is run (0-based)", ParamValidators.gtEq(0));
    batchRows = new IntParam(this, "batchRows", "most rows per call of the layer (" + MoeConf.BATCH_ROWS
        + " when unset)", ParamValidators.gt(0));
    backend = new Param<>(this, "backend", "auto|cpu|gpu (" + MoeConf.BACKEND + " when unset)",
        ParamValidators.inArray(new String[] {"auto", "cpu", "gpu"}));
    badRows = new Param<>(this, "badRows", "error|skip|null for null, wrong-width or non-finite rows ("
        + MoeConf.BAD_ROWS + " when unset)", ParamValidators.inArray(new String[] {"error", "skip", "null"}));
    gemm = new Param<>(this, "gemm", "bf16|fp8|mxfp4|nvfp4 operand precision of the GPU expert GEMMs ("
        + MoeConf.GEMM + " when unset)", ParamValidators.inArray(GemmPrecision.names()));
    setDefault(inputCol, "embedding");
    setDefault(outputCol, "moe_output");
    setDefault(layer, 0);
  }

  @Override
  public String uid() {
    return uid;
  }

  public Param<String> inputCol() {
    return inputCol;
  }

  public Param<String> outputCol() {
    return outputCol;
  }

  public Param<String> modelPath() {
    return modelPath;
  }

  public IntParam layer() {
    return layer;
  }

  public IntParam batchRows() {
    return batchRows;
  }

  public Param<String> backend() {
    return backend;
  }

  public Param<String> badRows() {
    return badRows;
  }

  public Param<String> gemm() {
    return gemm;
  }

  public String getInputCol() {
    return $(inputCol);
  }

  public String getOutputCol() {
    return $(outputCol);
  }

  public String getModelPath() {
    return $(modelPath);
  }

  public int getLayer() {
    return (Integer) $(layer);
  }

  public MoeScorer setInputCol(String v) {
    set(inputCol, v);
    return this;
  }

  public MoeScorer setOutputCol(String v) {
    set(outputCol, v);
    return this;
  }

  public MoeScorer setModelPath(String v) {
    set(modelPath, v);
    return this;
  }

  public MoeScorer setLayer(int v) {
    set(layer, v);
    return this;
  }

  public MoeScorer setBatchRows(int v) {
    set(batchRows, v);
    return this;
  }

  public MoeScorer setBackend(String v) {
    set(backend, v);
    return this;
  }

  public MoeScorer setBadRows(String v) {
    set(badRows, v);
    return this;
  }

  public MoeScorer setGemm(String v) {
    set(gemm, v);
    return this;
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    transformSchema(dataset.schema());
    if (!MoeExtensions.isInstalled(dataset.sparkSession())) {
      MoeExtensions.install(dataset.sparkSession());
    }
    List<Column> opts = new ArrayList<>();
    addOption(opts, "batchRows", batchRows);
    addOption(opts, "backend", backend);
    addOption(opts, "badRows", badRows);
    addOption(opts, "gemm", gemm);
    List<Column> args = new ArrayList<>(List.of(dataset.col(getInputCol()), functions.lit(getModelPath()),
        functions.lit(getLayer())));
    if (!opts.isEmpty()) {
      args.add(functions.map(opts.toArray(new Column[0])));
    }
    return dataset.withColumn(getOutputCol(),
        functions.call_function(MoeScoreExpr.NAME, args.toArray(new Column[0])));
  }

  private void addOption(List<Column> opts, String key, Param<?> p) {
    if (isSet(p)) {
      opts.add(functions.lit(key));
      opts.add(functions.lit(String.valueOf($(p))));
    }
  }

  /**
   * Checks that {@code modelPath} is set, {@code inputCol} exists with a supported type and
   * {@code outputCol} does not exist; returns the schema with {@code outputCol: array<float>} appended.
   */
  @Override
  public StructType transformSchema(StructType schema) {
    if (!isDefined(modelPath)) {
      throw new IllegalArgumentException("MoeScorer " + uid + ": modelPath is not set");
    }
    String in = getInputCol();
    List<String> names = List.of(schema.fieldNames());
    if (!names.contains(in)) {
      throw new IllegalArgumentException("MoeScorer " + uid + ": input column '" + in + "' does not exist; columns: "
          + names);
    }
    DataType t = schema.apply(in).dataType();
    boolean ok = t instanceof BinaryType
        || (t instanceof ArrayType a && (a.elementType() instanceof FloatType || a.elementType() instanceof DoubleType));
    if (!ok) {
      throw new IllegalArgumentException("MoeScorer " + uid + ": input column '" + in + "' must be array<float>, "
          + "array<double> or binary (little-endian float32), got " + t.simpleString());
    }
    String out = getOutputCol();
    if (names.contains(out)) {
      throw new IllegalArgumentException("MoeScorer " + uid + ": output column '" + out + "' already exists");
    }
    return schema.add(new StructField(out, MoeScoreExpr.SCORE_TYPE, true,
        org.apache.spark.sql.types.Metadata.empty()));
  }

  @Override
  public MoeScorer copy(ParamMap extra) {
    return (MoeScorer) defaultCopy(extra);
  }

  /** Reader for {@code MoeScorer.load(path)} and {@code PipelineModel.load} (found reflectively). */
  public static MLReader<MoeScorer> read() {
    return new DefaultParamsReader<>();
  }

  /** Loads a stage saved with {@code write().save(path)}. */
  public static MoeScorer load(String path) {
    return read().load(path);
  }
}
