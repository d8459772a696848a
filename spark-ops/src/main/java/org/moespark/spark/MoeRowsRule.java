package org.moespark.spark;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.execution.ColumnarRule;
import org.apache.spark.sql.execution.ColumnarToRowExec;
import org.apache.spark.sql.execution.ProjectExec;
import org.apache.spark.sql.execution.SparkPlan;

/**
 * Replaces Spark's {@code ColumnarToRowExec} above a {@link MoeScoreExec} with {@link MoeRowsExec}, which
 * copies the result arrays in bulk and converts only the columns the parent uses: for a
 * {@code Project} directly above, the columns its expressions reference; else all of them. Runs after Spark
 * has inserted its row/columnar transitions ({@link ColumnarRule#postColumnarTransitions}, installed by
 * {@link MoeExtensions}).
 */
public final class MoeRowsRule extends Rule<SparkPlan> {
  /** The columnar rule that carries this rule (for {@code SparkSessionExtensions.injectColumnar}). */
  public static ColumnarRule columnarRule() {
    return new ColumnarRule() {
      @Override
      public Rule<SparkPlan> postColumnarTransitions() {
        return new MoeRowsRule();
      }
    };
  }

  @Override
  public SparkPlan apply(SparkPlan plan) {
    return plan.transformDown(Scala.pf(MoeRowsRule::matches, MoeRowsRule::rewrite));
  }

  private static boolean matches(SparkPlan p) {
    if (p instanceof ProjectExec pr) {
      return pr.child() instanceof ColumnarToRowExec c && c.child() instanceof MoeScoreExec;
    }
    return p instanceof ColumnarToRowExec c && c.child() instanceof MoeScoreExec;
  }

  private static SparkPlan rewrite(SparkPlan p) {
    if (p instanceof ProjectExec pr) {
      MoeScoreExec m = (MoeScoreExec) ((ColumnarToRowExec) pr.child()).child();
      AttributeSet used = pr.references();
      List<Attribute> keep = new ArrayList<>();
      for (Attribute a : Scala.list(m.output())) {
        if (used.contains(a)) {
          keep.add(a);
        }
      }
      return new ProjectExec(pr.projectList(), new MoeRowsExec(Scala.seq(keep), m));
    }
    MoeScoreExec m = (MoeScoreExec) ((ColumnarToRowExec) p).child();
    return new MoeRowsExec(m.output(), m);
  }
}
