package org.moespark.spark;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.SparkStrategy;
import org.apache.spark.sql.internal.SQLConf;
import scala.collection.immutable.Seq;

/**
 * Planner strategy: {@link MoeEval} → {@link MoeScoreExec}. This runs on the driver before any task, so it
 * is where each call's settings are resolved from the session conf and its model is checked
 * ({@link ModelResolver} + {@link ScorerLoader#validate}): a missing or broken model fails the query
 * here, once, with one message, instead of failing (and retrying) every task.
 */
public final class MoeStrategy extends SparkStrategy {
  private final transient SparkSession session;

  public MoeStrategy(SparkSession session) {
    this.session = session;
  }

  @Override
  public Seq<SparkPlan> apply(LogicalPlan plan) {
    if (!(plan instanceof MoeEval e)) {
      return Scala.seq();
    }
    SQLConf conf = SQLConf.get();
    List<MoeConf.Settings> settings = new ArrayList<>();
    for (MoeScoreExpr c : Scala.list(e.calls())) {
      MoeConf.Settings s;
      String uri;
      int layer;
      try {
        s = MoeConf.resolve(k -> conf.getConfString(k, null), c.options());
        uri = c.modelUri();
        layer = c.layer();
      } catch (IllegalArgumentException ex) {
        throw new IllegalArgumentException(c.sql() + ": " + ex.getMessage(), ex);
      }
      validate(c, uri, layer, s);
      settings.add(s);
    }
    return Scala.seq(new MoeScoreExec(e.calls(), e.resultAttrs(), planLater(e.child()), settings));
  }

  /**
   * The model directory as the driver sees it. A bare name that is not a local path may be a directory
   * shipped with {@code addFile(dir, true)}: the executors find it with {@code SparkFiles}, the driver
   * checks the directory it was added from.
   */
  private Path driverPath(String uri) {
    try {
      return ModelResolver.resolve(uri, null);
    } catch (IllegalArgumentException notLocal) {
      if (!uri.contains("/") && !uri.contains("\\")) {
        for (String added : Scala.list(session.sparkContext().listFiles())) {
          java.net.URI u = java.net.URI.create(added);
          String p = u.getPath();
          if (p != null && (u.getScheme() == null || u.getScheme().equals("file"))
              && Path.of(p).getFileName() != null && Path.of(p).getFileName().toString().equals(uri)) {
            return Path.of(p);
          }
        }
      }
      throw notLocal;
    }
  }

  private void validate(MoeScoreExpr c, String uri, int layer, MoeConf.Settings s) {
    try {
      ScorerLoader loader = MoeConf.newLoader(s.loader());
      if (ModelResolver.isRemote(uri)) {
        ModelResolver.checkRemote(uri, layer, session.sparkContext().hadoopConfiguration());
      } else {
        loader.validate(driverPath(uri), layer);
      }
    } catch (RuntimeException ex) {
      throw new IllegalArgumentException(c.prettyName() + ": model '" + uri + "' layer " + layer
          + " cannot be used: " + ex.getMessage(), ex);
    }
  }
}
