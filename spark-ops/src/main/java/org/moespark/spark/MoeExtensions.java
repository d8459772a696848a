package org.moespark.spark;

import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.SparkSessionExtensionsProvider;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.execution.SparkStrategy;
import scala.Function1;
import scala.Tuple3;
import scala.collection.immutable.Seq;
import scala.runtime.BoxedUnit;

/**
 * Installs the batched {@code moe_score} / {@code moe_score_routed} SQL functions: the functions, the
 * optimizer rule {@link ExtractMoeScore} and the planner strategy {@link MoeStrategy}.
 *
 * <p>Either at session start, {@code spark.sql.extensions=org.moespark.spark.MoeExtensions}, or on a
 * running session (notebooks, where the cluster config cannot change) with {@link #install(SparkSession)}.
 *
 * <pre>
 *   SELECT id, moe_score(embedding, '/models/olmoe', 3) AS y FROM docs
 *   SELECT moe_score_routed(embedding, 'hdfs:///models/qwen3', 0, map('backend', 'gpu')).topk_ids FROM docs
 * </pre>
 *
 * See {@link MoeScoreExpr} for the arguments and {@link MoeConf} for the configuration keys.
 */
public final class MoeExtensions implements SparkSessionExtensionsProvider {
  private static final String SOURCE = "java_udf";

  @Override
  public BoxedUnit apply(SparkSessionExtensions ext) {
    for (boolean routed : new boolean[] {false, true}) {
      String name = routed ? MoeScoreExpr.ROUTED_NAME : MoeScoreExpr.NAME;
      ext.injectFunction(new Tuple3<>(new FunctionIdentifier(name), info(name), builder(routed)));
    }
    ext.injectOptimizerRule(session -> new ExtractMoeScore());
    ext.injectPlannerStrategy(MoeStrategy::new);
    ext.injectColumnar(session -> MoeRowsRule.columnarRule());
    return BoxedUnit.UNIT;
  }

  /**
   * Installs the functions, rule and strategy on an existing session (idempotent). Uses Spark's
   * {@code experimental} hooks: the rule then runs in the "User Provided Optimizers" batch, after the
   * built-in optimizations.
   *
   * @throws IllegalArgumentException for a session that is not a classic (non-Connect) session
   */
  public static void install(SparkSession spark) {
    if (!(spark instanceof org.apache.spark.sql.classic.SparkSession cs)) {
      throw new IllegalArgumentException("MoeExtensions.install needs a classic SparkSession, got "
          + (spark == null ? "null" : spark.getClass().getName()) + " (Spark Connect sessions cannot install "
          + "extensions at run time: set spark.sql.extensions on the server)");
    }
    if (isInstalled(cs)) {
      return; // by spark.sql.extensions or an earlier call: adding it twice would only run the rule twice
    }
    for (boolean routed : new boolean[] {false, true}) {
      String name = routed ? MoeScoreExpr.ROUTED_NAME : MoeScoreExpr.NAME;
      cs.sessionState().functionRegistry().createOrReplaceTempFunction(name, builder(routed), SOURCE);
    }
    List<Rule<LogicalPlan>> rules = new ArrayList<>(Scala.list(cs.experimental().extraOptimizations()));
    if (rules.stream().noneMatch(r -> r instanceof ExtractMoeScore)) {
      rules.add(new ExtractMoeScore());
      cs.experimental().extraOptimizations_$eq(Scala.seq(rules));
    }
    List<SparkStrategy> strategies = new ArrayList<>(Scala.list(cs.experimental().extraStrategies()));
    if (strategies.stream().noneMatch(s -> s instanceof MoeStrategy)) {
      strategies.add(new MoeStrategy(cs));
      cs.experimental().extraStrategies_$eq(Scala.seq(strategies));
    }
  }

  /**
   * Whether {@code moe_score} is callable and planned by the batched operator in this session (by the
   * extension or {@link #install}): the function resolves and the planner has {@link MoeStrategy}.
   */
  public static boolean isInstalled(SparkSession spark) {
    if (!(spark instanceof org.apache.spark.sql.classic.SparkSession cs)) {
      return false;
    }
    boolean planned = Scala.list(cs.sessionState().planner().strategies()).stream()
        .anyMatch(s -> s instanceof MoeStrategy);
    return planned && cs.catalog().functionExists(MoeScoreExpr.NAME)
        && cs.catalog().functionExists(MoeScoreExpr.ROUTED_NAME);
  }

  private static Function1<Seq<Expression>, Expression> builder(boolean routed) {
    return args -> MoeScoreExpr.build(args, routed);
  }

  private static ExpressionInfo info(String name) {
    String usage = "_FUNC_(embedding, 'model-uri', layer [, options]) - runs MoE block `layer` of the Hugging "
        + "Face model at `model-uri` on each embedding (array<float>, array<double> or little-endian float32 "
        + "binary), in batches. "
        + (name.equals(MoeScoreExpr.NAME) ? "Returns array<float>."
            : "Returns struct<output: array<float>, topk_ids: array<int>, topk_weights: array<float>>.");
    return new ExpressionInfo(MoeScoreExpr.class.getName(), null, name, usage, "", "", "", "", "", "", SOURCE);
  }
}
