package org.moespark.spark;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.PartitionEvaluator;
import org.apache.spark.PartitionEvaluatorFactory;
import org.apache.spark.SparkContext;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.BoundReference;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.SortOrder;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.plans.physical.Partitioning;
import org.apache.spark.sql.execution.ColumnarToRowTransition;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.execution.metric.SQLMetrics;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.apache.spark.sql.vectorized.ColumnarBatchRow;
import scala.collection.AbstractIterator;
import scala.collection.Iterator;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;
import scala.reflect.ClassTag$;

/**
 * The columnar-to-row transition above {@link MoeScoreExec}, in place of Spark's {@code ColumnarToRowExec}
 * (put there by {@link MoeRowsRule}): it turns only the columns its parent uses into {@code UnsafeRow}s, and
 * the {@code moe_score} result columns with one memory copy per array ({@link ResultRows}) instead of
 * Spark's element-by-element copy of a {@code ColumnarArray}. Pass-through columns go through a generated
 * {@link UnsafeProjection} as usual.
 *
 * <p>{@link #output()} is the subset of the operator's columns that the parent references, in the
 * operator's order: a {@code SELECT id, moe_score(embedding, ...)} does not convert the embedding.
 */
public final class MoeRowsExec extends SparkPlan implements ColumnarToRowTransition {
  private static final long serialVersionUID = 1L;

  private final Seq<Attribute> output;
  private final SparkPlan child;
  private transient scala.collection.immutable.Map<String, SQLMetric> metricMap;
  private Map<String, SQLMetric> metricsJava;

  /**
   * @param output the columns to produce: attributes of {@code child.output()} (any subset, any order)
   * @param child a {@link MoeScoreExec}
   */
  public MoeRowsExec(Seq<Attribute> output, SparkPlan child) {
    this.output = Objects.requireNonNull(output, "output");
    this.child = Objects.requireNonNull(child, "child");
    if (!(child instanceof MoeScoreExec)) {
      throw new IllegalArgumentException("MoeRowsExec converts the output of MoeScoreExec, got " + child.nodeName());
    }
    // the output is checked against the child's in doExecute, not here: canonicalized copies of the plan
    // renumber the attributes of the node and of its child separately
  }

  @Override
  public SparkPlan child() {
    return child;
  }

  @Override
  public Seq<Attribute> output() {
    return output;
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
  public String nodeName() {
    return "MoeRows";
  }

  private synchronized Map<String, SQLMetric> metricsJava() {
    if (metricsJava == null) {
      SparkContext sc = sparkContext();
      Map<String, SQLMetric> m = new LinkedHashMap<>();
      m.put("numOutputRows", SQLMetrics.createMetric(sc, "number of output rows"));
      m.put("numInputBatches", SQLMetrics.createMetric(sc, "number of input batches"));
      m.put("numBulkBatches", SQLMetrics.createMetric(sc, "batches with results copied in bulk"));
      metricsJava = m;
    }
    return metricsJava;
  }

  @Override
  public scala.collection.immutable.Map<String, SQLMetric> metrics() {
    if (metricMap == null) {
      metricMap = scala.collection.immutable.Map.from(CollectionConverters.asScala(metricsJava()));
    }
    return metricMap;
  }

  /** For each output column, its ordinal in the child's output. */
  private int[] ordinals() {
    List<Attribute> in = Scala.list(child.output());
    List<Attribute> out = Scala.list(output);
    int[] ord = new int[out.size()];
    for (int i = 0; i < ord.length; i++) {
      ord[i] = -1;
      for (int j = 0; j < in.size(); j++) {
        if (in.get(j).exprId().equals(out.get(i).exprId())) {
          ord[i] = j;
          break;
        }
      }
      if (ord[i] < 0) {
        throw new IllegalArgumentException("MoeRowsExec: column " + out.get(i) + " is not in the output " + in
            + " of " + child.nodeName());
      }
    }
    return ord;
  }

  @Override
  public RDD<InternalRow> doExecute() {
    int[] ord = ordinals();
    List<Attribute> in = Scala.list(child.output());
    int results = ((MoeScoreExec) child).calls().size();
    int firstResult = in.size() - results;
    // the projection reads JoinedRow(batch row, result row): pass-through columns from the batch row,
    // result columns from the result row (slot k = result column firstResult + k of the batch)
    List<Attribute> out = Scala.list(output);
    List<Expression> exprs = new ArrayList<>();
    int[] resultOrds = new int[ord.length];
    int nResult = 0;
    for (int i = 0; i < ord.length; i++) {
      Attribute a = out.get(i);
      if (ord[i] >= firstResult) {
        exprs.add(new BoundReference(in.size() + nResult, a.dataType(), a.nullable()));
        resultOrds[nResult++] = ord[i];
      } else {
        exprs.add(new BoundReference(ord[i], a.dataType(), a.nullable()));
      }
    }
    DataType[] resultTypes = new DataType[nResult];
    for (int k = 0; k < nResult; k++) {
      resultTypes[k] = in.get(resultOrds[k]).dataType();
    }
    Factory f = new Factory(Scala.seq(exprs), java.util.Arrays.copyOf(resultOrds, nResult), resultTypes, metricsJava());
    return child.executeColumnar().mapPartitionsWithEvaluator(f, ClassTag$.MODULE$.apply(InternalRow.class));
  }

  /** Per partition: batches in, rows out. */
  private static final class Factory implements PartitionEvaluatorFactory<ColumnarBatch, InternalRow> {
    private static final long serialVersionUID = 1L;

    private final Seq<Expression> exprs;
    private final int[] resultOrds;
    private final DataType[] resultTypes;
    private final Map<String, SQLMetric> metrics;

    Factory(Seq<Expression> exprs, int[] resultOrds, DataType[] resultTypes, Map<String, SQLMetric> metrics) {
      this.exprs = exprs;
      this.resultOrds = resultOrds;
      this.resultTypes = resultTypes;
      this.metrics = Map.copyOf(metrics);
    }

    @Override
    public PartitionEvaluator<ColumnarBatch, InternalRow> createEvaluator() {
      return (partitionIndex, inputs) -> {
        UnsafeProjection proj = UnsafeProjection.create(exprs);
        proj.initialize(partitionIndex);
        return new Rows(inputs.head(), proj, resultOrds, resultTypes, metrics);
      };
    }
  }

  private static final class Rows extends AbstractIterator<InternalRow> {
    private final Iterator<ColumnarBatch> in;
    private final UnsafeProjection proj;
    private final int[] resultOrds;
    private final DataType[] resultTypes;
    private final ResultRows[] readers;
    private final boolean[] fast;
    private final GenericInternalRow results;
    private final JoinedRow joined = new JoinedRow();
    private final SQLMetric numOutputRows;
    private final SQLMetric numInputBatches;
    private final SQLMetric numBulkBatches;
    private ColumnarBatch batch;
    private int row;

    Rows(Iterator<ColumnarBatch> in, UnsafeProjection proj, int[] resultOrds, DataType[] resultTypes,
        Map<String, SQLMetric> m) {
      this.in = in;
      this.proj = proj;
      this.resultOrds = resultOrds;
      this.resultTypes = resultTypes;
      this.readers = new ResultRows[resultOrds.length];
      for (int k = 0; k < readers.length; k++) {
        readers[k] = new ResultRows(resultTypes[k]);
      }
      this.fast = new boolean[resultOrds.length];
      this.results = new GenericInternalRow(resultOrds.length);
      this.numOutputRows = m.get("numOutputRows");
      this.numInputBatches = m.get("numInputBatches");
      this.numBulkBatches = m.get("numBulkBatches");
    }

    @Override
    public boolean hasNext() {
      while (batch == null || row >= batch.numRows()) {
        if (!in.hasNext()) {
          return false;
        }
        batch = in.next();
        row = 0;
        numInputBatches.add(1);
        boolean all = true;
        for (int k = 0; k < readers.length; k++) {
          fast[k] = readers[k].bind(batch.column(resultOrds[k]));
          all &= fast[k];
        }
        if (all) {
          numBulkBatches.add(1);
        }
      }
      return true;
    }

    @Override
    public InternalRow next() {
      if (!hasNext()) {
        throw new java.util.NoSuchElementException("MoeRowsExec: no more rows");
      }
      int r = row++;
      ColumnarBatchRow br = (ColumnarBatchRow) batch.getRow(r);
      for (int k = 0; k < readers.length; k++) {
        Object v = fast[k] ? readers[k].value(r) : br.get(resultOrds[k], resultTypes[k]);
        results.update(k, v);
      }
      numOutputRows.add(1);
      return proj.apply(joined.apply(br, results));
    }
  }

  @Override
  public Seq<SparkPlan> children() {
    return ColumnarToRowTransition.super.children();
  }

  @Override
  public SparkPlan withNewChildInternal(SparkPlan newChild) {
    return new MoeRowsExec(output, newChild);
  }

  @Override
  public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
    return ColumnarToRowTransition.super.withNewChildrenInternal(newChildren);
  }

  @Override
  public int productArity() {
    return 2;
  }

  @Override
  public Object productElement(int n) {
    return switch (n) {
      case 0 -> output;
      case 1 -> child;
      default -> throw new IndexOutOfBoundsException("MoeRowsExec has 2 product elements, asked for " + n);
    };
  }

  @Override
  public boolean canEqual(Object that) {
    return that instanceof MoeRowsExec;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MoeRowsExec e && e.output.equals(output) && e.child.equals(child);
  }

  @Override
  public int hashCode() {
    return Objects.hash(output, child);
  }
}
