package org.moespark.spark;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.catalyst.expressions.Alias;
import org.apache.spark.sql.catalyst.expressions.And;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeReference;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.Generator;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.NamedExpression$;
import org.apache.spark.sql.catalyst.expressions.WindowExpression;
import org.apache.spark.sql.catalyst.expressions.aggregate.AggregateExpression;
import org.apache.spark.sql.catalyst.plans.Cross$;
import org.apache.spark.sql.catalyst.plans.Inner$;
import org.apache.spark.sql.catalyst.plans.logical.Filter;
import org.apache.spark.sql.catalyst.plans.logical.Join;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.Project;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.types.Metadata;
import scala.Option;

/**
 * Optimizer rule (the {@code ExtractPythonUDFs} pattern): for any operator whose expressions contain
 * {@link MoeScoreExpr} calls — Project, Filter, Aggregate, Join condition, Window, Generate, Sort, … — put a
 * {@link MoeEval} below the operator on the child that provides the call's input, replace each call by the
 * attribute that node produces, and re-project when the operator's output would change. Non-attribute
 * embedding arguments are computed in a {@code Project} below {@link MoeEval}. Nested calls are extracted
 * innermost first (the rule runs in a fixed-point batch). Identical calls are evaluated once.
 *
 * <p>Two shapes are rewritten first: a call in an inner-join condition that needs both sides becomes a
 * Filter above the join; a Filter directly above a {@link MoeEval} has its conjuncts that do not use the
 * scores pushed below it, so rows are filtered before they are scored.
 *
 * <p>A call that cannot be placed (its input needs an aggregate, window or generator result computed by
 * the same operator, or both sides of an outer join) raises an error here instead of running row at a time.
 */
public final class ExtractMoeScore extends Rule<LogicalPlan> {
  @Override
  public LogicalPlan apply(LogicalPlan plan) {
    return plan.transformUp(Scala.pf(p -> true, this::rewrite));
  }

  private LogicalPlan rewrite(LogicalPlan p) {
    if (p instanceof MoeEval) {
      return p;
    }
    List<MoeScoreExpr> calls = new ArrayList<>();
    for (Expression e : Scala.list(p.expressions())) {
      collectInnermost(e, calls);
    }
    if (calls.isEmpty()) {
      return p instanceof Filter f && f.child() instanceof MoeEval ? pushFilterBelow(f) : p;
    }
    List<LogicalPlan> children = new ArrayList<>(Scala.list(p.children()));
    List<List<MoeScoreExpr>> perChild = new ArrayList<>();
    for (int i = 0; i < children.size(); i++) {
      perChild.add(new ArrayList<>());
    }
    List<MoeScoreExpr> unplaced = new ArrayList<>();
    for (MoeScoreExpr c : calls) {
      int at = -1;
      if (evaluable(c.input())) {
        for (int i = 0; i < children.size() && at < 0; i++) {
          if (c.input().references().subsetOf(children.get(i).outputSet())) {
            at = i;
          }
        }
      }
      if (at >= 0) {
        perChild.get(at).add(c);
      } else {
        unplaced.add(c);
      }
    }
    if (!unplaced.isEmpty()) {
      if (p instanceof Join j && j.condition().isDefined()
          && (j.joinType() == Inner$.MODULE$ || j.joinType() == Cross$.MODULE$)) {
        return rewrite(splitJoinCondition(j));
      }
      MoeScoreExpr c = unplaced.get(0);
      throw new IllegalArgumentException(c.prettyName() + " cannot be evaluated in batches inside " + p.nodeName()
          + ": its embedding argument " + c.input().sql() + " is not computable from one input of the operator "
          + "(it uses an aggregate, window or generator result of the same operator, or both sides of a "
          + "non-inner join). Compute the argument in a subquery first.");
    }
    List<Expression> from = new ArrayList<>();
    List<Expression> to = new ArrayList<>();
    for (int i = 0; i < children.size(); i++) {
      if (!perChild.get(i).isEmpty()) {
        children.set(i, insertEval(children.get(i), perChild.get(i), from, to));
      }
    }
    LogicalPlan replaced = p.transformExpressions(Scala.pf(e -> indexOf(from, e) >= 0, e -> to.get(indexOf(from, e))));
    LogicalPlan out = replaced.withNewChildren(Scala.seq(children));
    if (!out.output().equals(p.output())) {
      out = new Project(Scala.seq(new ArrayList<NamedExpression>(Scala.list(p.output()))), out);
    }
    return out;
  }

  /** MoeEval on {@code child} for {@code calls}; records call → result attribute in from/to. */
  private static LogicalPlan insertEval(LogicalPlan child, List<MoeScoreExpr> calls, List<Expression> from,
      List<Expression> to) {
    List<Expression> inputs = new ArrayList<>();
    List<Attribute> inputAttrs = new ArrayList<>();
    List<NamedExpression> aliases = new ArrayList<>();
    List<MoeScoreExpr> bound = new ArrayList<>();
    List<Attribute> results = new ArrayList<>();
    for (MoeScoreExpr c : calls) {
      Expression in = c.input();
      Attribute attr;
      if (in instanceof Attribute a && child.outputSet().contains(a)) {
        attr = a;
      } else {
        int k = indexOf(inputs, in);
        if (k < 0) {
          Alias al = new Alias(in, "moe_input" + aliases.size(), NamedExpression$.MODULE$.newExprId(), Scala.seq(),
              Option.empty(), Scala.seq());
          aliases.add(al);
          inputs.add(in);
          inputAttrs.add(al.toAttribute());
          k = inputs.size() - 1;
        }
        attr = inputAttrs.get(k);
      }
      bound.add(c.withInput(attr));
      Attribute r = new AttributeReference(c.prettyName() + results.size(), c.dataType(), true, Metadata.empty(),
          NamedExpression$.MODULE$.newExprId(), Scala.seq());
      results.add(r);
      from.add(c);
      to.add(r);
    }
    LogicalPlan below = child;
    if (!aliases.isEmpty()) {
      List<NamedExpression> list = new ArrayList<>(Scala.list(child.output()));
      list.addAll(aliases);
      below = new Project(Scala.seq(list), child);
    }
    return new MoeEval(Scala.seq(bound), Scala.seq(results), below);
  }

  /** Inner join whose condition has a call needing both sides: move those conjuncts into a Filter above. */
  private static LogicalPlan splitJoinCondition(Join j) {
    List<Expression> keep = new ArrayList<>();
    List<Expression> lift = new ArrayList<>();
    for (Expression e : conjuncts(j.condition().get())) {
      List<MoeScoreExpr> calls = new ArrayList<>();
      collectInnermost(e, calls);
      boolean needsBoth = false;
      for (MoeScoreExpr c : calls) {
        needsBoth |= !c.input().references().subsetOf(j.left().outputSet())
            && !c.input().references().subsetOf(j.right().outputSet());
      }
      (needsBoth ? lift : keep).add(e);
    }
    Option<Expression> rest = keep.isEmpty() ? Option.empty() : Option.apply(and(keep));
    Join inner = new Join(j.left(), j.right(), j.joinType(), rest, j.hint());
    return new Filter(and(lift), inner);
  }

  /** Filter(cond, MoeEval(child)): conjuncts not using the scores go below, so fewer rows are scored. */
  private static LogicalPlan pushFilterBelow(Filter f) {
    MoeEval e = (MoeEval) f.child();
    List<Expression> below = new ArrayList<>();
    List<Expression> above = new ArrayList<>();
    for (Expression c : conjuncts(f.condition())) {
      boolean pushable = c.deterministic() && c.references().subsetOf(e.child().outputSet());
      (pushable ? below : above).add(c);
    }
    if (below.isEmpty()) {
      return f;
    }
    LogicalPlan moved = e.withNewChildInternal(new Filter(and(below), e.child()));
    return above.isEmpty() ? moved : new Filter(and(above), moved);
  }

  private static void collectInnermost(Expression e, List<MoeScoreExpr> out) {
    if (e instanceof MoeScoreExpr m && !containsCall(m.input()) && indexOf(out, m) < 0) {
      out.add(m);
    }
    for (Expression c : Scala.list(e.children())) {
      collectInnermost(c, out);
    }
  }

  private static boolean containsCall(Expression e) {
    if (e instanceof MoeScoreExpr) {
      return true;
    }
    for (Expression c : Scala.list(e.children())) {
      if (containsCall(c)) {
        return true;
      }
    }
    return false;
  }

  /** Whether {@code e} can be computed in a Project below the operator. */
  private static boolean evaluable(Expression e) {
    if (e instanceof AggregateExpression || e instanceof WindowExpression || e instanceof Generator) {
      return false;
    }
    for (Expression c : Scala.list(e.children())) {
      if (!evaluable(c)) {
        return false;
      }
    }
    return true;
  }

  private static int indexOf(List<? extends Expression> list, Expression e) {
    for (int i = 0; i < list.size(); i++) {
      if (list.get(i).semanticEquals(e)) {
        return i;
      }
    }
    return -1;
  }

  private static List<Expression> conjuncts(Expression e) {
    List<Expression> out = new ArrayList<>();
    if (e instanceof And a) {
      out.addAll(conjuncts(a.left()));
      out.addAll(conjuncts(a.right()));
    } else {
      out.add(e);
    }
    return out;
  }

  private static Expression and(List<Expression> parts) {
    Expression r = parts.get(0);
    for (int i = 1; i < parts.size(); i++) {
      r = new And(r, parts.get(i));
    }
    return r;
  }
}
