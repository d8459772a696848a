package org.moespark.spark;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.SparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.SortOrder;
import org.apache.spark.sql.catalyst.plans.physical.Partitioning;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.UnaryExecNode;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.execution.metric.SQLMetrics;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag$;

/**
 * Physical operator of {@link MoeEval}: evaluates the {@code moe_score} calls over the child's
 * {@link ColumnarBatch}es and appends one column per call. Columnar only ({@code supportsColumnar}, not
 * row based): a columnar child such as the vectorized Parquet scan feeds it its batches directly; for a
 * row-based child Spark inserts {@code RowToColumnar} (the row-batching path), and a {@code ColumnarToRow}
 * above it for row-based parents.
 *
 * <p>SQL metrics (Spark UI): input/output rows, tokens scored, scorer calls (batches) in total and per
 * backend (GPU vs CPU), bad rows (and how many were skipped or nulled), time host→device, compute,
 * device→host, host-side packing, and model loading. On the GPU path the copy times are device time of the
 * copies (they overlap compute: copies of one task run while another task's chunk computes), compute is
 * the wall time of {@code forwardDevice} inside the layer's lock, and {@code gpuWaitTime} is host time a
 * task spent blocked on the layer's lock (other tasks' compute) or on its own copies. {@code hostTime}
 * excludes the scorer calls and waiting for the model (a task whose first batch waits while another
 * task of the executor loads the layer).
 */
public final class MoeScoreExec extends SparkPlan implements UnaryExecNode {
  private static final long serialVersionUID = 1L;

  private final Seq<MoeScoreExpr> calls;
  private final Seq<Attribute> resultAttrs;
  private final SparkPlan child;
  private final List<MoeConf.Settings> settings;
  private transient scala.collection.immutable.Map<String, SQLMetric> metricMap;
  private Map<String, SQLMetric> metricsJava;

  public MoeScoreExec(Seq<MoeScoreExpr> calls, Seq<Attribute> resultAttrs, SparkPlan child,
      List<MoeConf.Settings> settings) {
    this.calls = Objects.requireNonNull(calls, "calls");
    this.resultAttrs = Objects.requireNonNull(resultAttrs, "resultAttrs");
    this.child = Objects.requireNonNull(child, "child");
    this.settings = List.copyOf(settings);
    if (settings.size() != calls.size()) {
      throw new IllegalArgumentException("MoeScoreExec: " + calls.size() + " calls but " + settings.size() + " settings");
    }
  }

  public Seq<MoeScoreExpr> calls() {
    return calls;
  }

  /** The resolved settings of each call (same order as {@link #calls()}). */
  public List<MoeConf.Settings> settings() {
    return settings;
  }

  @Override
  public SparkPlan child() {
    return child;
  }

  @Override
  public Seq<Attribute> output() {
    List<Attribute> out = new ArrayList<>(Scala.list(child.output()));
    out.addAll(Scala.list(resultAttrs));
    return Scala.seq(out);
  }

  /** The result columns are made here (so {@code explain()} does not flag them as missing input). */
  @Override
  public AttributeSet producedAttributes() {
    @SuppressWarnings({"unchecked", "rawtypes"})
    scala.collection.Iterable<org.apache.spark.sql.catalyst.expressions.Expression> it = (scala.collection.Iterable) resultAttrs;
    return AttributeSet.apply(it);
  }

  @Override
  public Partitioning outputPartitioning() {
    return child.outputPartitioning();
  }

  @Override
  public Seq<SortOrder> outputOrdering() {
    return child.outputOrdering();
  }

  @Override
  public boolean supportsColumnar() {
    return true;
  }

  @Override
  public boolean supportsRowBased() {
    return false;
  }

  @Override
  public String nodeName() {
    return "MoeScoreExec";
  }

  private synchronized Map<String, SQLMetric> metricsJava() {
    if (metricsJava == null) {
      SparkContext sc = sparkContext();
      Map<String, SQLMetric> m = new LinkedHashMap<>();
      m.put("numInputRows", SQLMetrics.createMetric(sc, "number of input rows"));
      m.put("numOutputRows", SQLMetrics.createMetric(sc, "number of output rows"));
      m.put("numTokens", SQLMetrics.createMetric(sc, "tokens scored"));
      m.put("numBatches", SQLMetrics.createMetric(sc, "scorer batches"));
      m.put("numGpuBatches", SQLMetrics.createMetric(sc, "scorer batches on GPU"));
      m.put("numCpuBatches", SQLMetrics.createMetric(sc, "scorer batches on CPU"));
      m.put("numBadRows", SQLMetrics.createMetric(sc, "bad inputs (per call)"));
      m.put("numSkippedRows", SQLMetrics.createMetric(sc, "bad rows skipped"));
      m.put("numNulledRows", SQLMetrics.createMetric(sc, "bad rows with null result"));
      m.put("hostToDeviceTime", SQLMetrics.createNanoTimingMetric(sc, "time host to device", -1L));
      m.put("computeTime", SQLMetrics.createNanoTimingMetric(sc, "time in MoE compute", -1L));
      m.put("deviceToHostTime", SQLMetrics.createNanoTimingMetric(sc, "time device to host", -1L));
      m.put("gpuWaitTime", SQLMetrics.createNanoTimingMetric(sc, "time waiting for the GPU (lock, copies)", -1L));
      m.put("hostTime", SQLMetrics.createNanoTimingMetric(sc, "time packing and unpacking batches", -1L));
      m.put("modelLoadTime", SQLMetrics.createNanoTimingMetric(sc, "time loading models", -1L));
      metricsJava = m;
    }
    return metricsJava;
  }

  /** The SQL metrics by name, in the order the Spark UI lists them (job summaries, tests). */
  public Map<String, SQLMetric> metricsInOrder() {
    return java.util.Collections.unmodifiableMap(metricsJava());
  }

  @Override
  public scala.collection.immutable.Map<String, SQLMetric> metrics() {
    if (metricMap == null) {
      metricMap = scala.collection.immutable.Map.from(CollectionConverters.asScala(metricsJava()));
    }
    return metricMap;
  }

  @Override
  public RDD<InternalRow> doExecute() {
    throw new IllegalStateException("MoeScoreExec is columnar only: Spark must call executeColumnar()");
  }

  @Override
  public RDD<ColumnarBatch> doExecuteColumnar() {
    List<Attribute> in = Scala.list(child.output());
    List<CallPlan> plans = new ArrayList<>();
    List<MoeScoreExpr> cs = Scala.list(calls);
    for (int i = 0; i < cs.size(); i++) {
      MoeScoreExpr c = cs.get(i);
      Attribute a = (Attribute) c.input();
      int ordinal = -1;
      for (int j = 0; j < in.size(); j++) {
        if (in.get(j).exprId().equals(a.exprId())) {
          ordinal = j;
          break;
        }
      }
      if (ordinal < 0) {
        throw new IllegalStateException("MoeScoreExec: input " + a + " of " + c.sql() + " not in the child output " + in);
      }
      plans.add(new CallPlan(c.sql(), c.modelUri(), c.layer(), c.routed(), settings.get(i), ordinal,
          kindOf(a.dataType())));
    }
    MoeScoreEvaluatorFactory f = new MoeScoreEvaluatorFactory(plans, metricsJava());
    return child.executeColumnar().mapPartitionsWithEvaluator(f, ClassTag$.MODULE$.apply(ColumnarBatch.class));
  }

  private static CallPlan.InputKind kindOf(DataType t) {
    if (t instanceof BinaryType) {
      return CallPlan.InputKind.BINARY_LE_FLOAT32;
    }
    if (t instanceof ArrayType a) {
      return a.elementType() instanceof DoubleType ? CallPlan.InputKind.DOUBLE_ARRAY : CallPlan.InputKind.FLOAT_ARRAY;
    }
    throw new IllegalStateException("moe_score input type " + t.simpleString() + " not supported");
  }

  @Override
  public Seq<SparkPlan> children() {
    return UnaryExecNode.super.children();
  }

  @Override
  public SparkPlan withNewChildInternal(SparkPlan newChild) {
    return new MoeScoreExec(calls, resultAttrs, newChild, settings);
  }

  @Override
  public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
    return UnaryExecNode.super.withNewChildrenInternal(newChildren);
  }

  @Override
  public int productArity() {
    return 4;
  }

  @Override
  public Object productElement(int n) {
    return switch (n) {
      case 0 -> calls;
      case 1 -> resultAttrs;
      case 2 -> child;
      case 3 -> settings;
      default -> throw new IndexOutOfBoundsException("MoeScoreExec has 4 product elements, asked for " + n);
    };
  }

  @Override
  public boolean canEqual(Object that) {
    return that instanceof MoeScoreExec;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MoeScoreExec e && e.calls.equals(calls) && e.resultAttrs.equals(resultAttrs)
        && e.child.equals(child) && e.settings.equals(settings);
  }

  @Override
  public int hashCode() {
    return Objects.hash(calls, resultAttrs, child, settings);
  }
}
