package org.moespark.spark;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.UnaryNode;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;

/**
 * Logical node: evaluate {@code calls} (each a {@link MoeScoreExpr} whose embedding argument is an attribute
 * of {@code child}) in batches and append one column per call ({@code resultAttrs}). The shape of Spark's
 * {@code ArrowEvalPython}: {@code output = child.output ++ resultAttrs}.
 */
public final class MoeEval extends LogicalPlan implements UnaryNode, Serializable {
  private static final long serialVersionUID = 1L;

  private final Seq<MoeScoreExpr> calls;
  private final Seq<Attribute> resultAttrs;
  private final LogicalPlan child;

  public MoeEval(Seq<MoeScoreExpr> calls, Seq<Attribute> resultAttrs, LogicalPlan child) {
    this.calls = Objects.requireNonNull(calls, "calls");
    this.resultAttrs = Objects.requireNonNull(resultAttrs, "resultAttrs");
    this.child = Objects.requireNonNull(child, "child");
    if (calls.size() != resultAttrs.size()) {
      throw new IllegalArgumentException("MoeEval: " + calls.size() + " calls but " + resultAttrs.size()
          + " result attributes");
    }
  }

  public Seq<MoeScoreExpr> calls() {
    return calls;
  }

  public Seq<Attribute> resultAttrs() {
    return resultAttrs;
  }

  @Override
  public LogicalPlan child() {
    return child;
  }

  @Override
  public Seq<Attribute> output() {
    List<Attribute> out = new ArrayList<>(Scala.list(child.output()));
    out.addAll(Scala.list(resultAttrs));
    return Scala.seq(out);
  }

  @Override
  public AttributeSet producedAttributes() {
    @SuppressWarnings({"unchecked", "rawtypes"})
    scala.collection.Iterable<org.apache.spark.sql.catalyst.expressions.Expression> it = (scala.collection.Iterable) resultAttrs;
    return AttributeSet.apply(it);
  }

  @Override
  public Seq<LogicalPlan> children() {
    return UnaryNode.super.children();
  }

  @Override
  public LogicalPlan withNewChildInternal(LogicalPlan newChild) {
    return new MoeEval(calls, resultAttrs, newChild);
  }

  @Override
  public LogicalPlan withNewChildrenInternal(IndexedSeq<LogicalPlan> newChildren) {
    return UnaryNode.super.withNewChildrenInternal(newChildren);
  }

  @Override
  public int productArity() {
    return 3;
  }

  @Override
  public Object productElement(int n) {
    return switch (n) {
      case 0 -> calls;
      case 1 -> resultAttrs;
      case 2 -> child;
      default -> throw new IndexOutOfBoundsException("MoeEval has 3 product elements, asked for " + n);
    };
  }

  @Override
  public boolean canEqual(Object that) {
    return that instanceof MoeEval;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MoeEval m && m.calls.equals(calls) && m.resultAttrs.equals(resultAttrs) && m.child.equals(child);
  }

  @Override
  public int hashCode() {
    return Objects.hash(calls, resultAttrs, child);
  }
}
