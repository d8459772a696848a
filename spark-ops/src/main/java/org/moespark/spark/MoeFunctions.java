package org.moespark.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.functions;

/**
 * DataFrame-API spelling of the SQL functions (the session must have {@link MoeExtensions}, by
 * {@code spark.sql.extensions} or {@link MoeExtensions#install}):
 *
 * <pre>
 *   df.withColumn("y", MoeFunctions.moeScore(col("embedding"), "/models/olmoe", 3))
 * </pre>
 *
 * Same arguments, results and batched plan as {@code moe_score} / {@code moe_score_routed}; see
 * {@link MoeScoreExpr}.
 */
public final class MoeFunctions {
  private MoeFunctions() {}

  /** {@code moe_score(embedding, modelUri, layer)} → {@code array<float>}. */
  public static Column moeScore(Column embedding, String modelUri, int layer) {
    return call(MoeScoreExpr.NAME, embedding, modelUri, layer, Map.of());
  }

  /**
   * {@code moe_score(embedding, modelUri, layer, options)}; option keys are the {@link MoeConf} keys without
   * the {@code spark.moespark.} prefix ({@code backend}, {@code batchRows}, {@code badRows}, {@code compute}).
   */
  public static Column moeScore(Column embedding, String modelUri, int layer, Map<String, String> options) {
    return call(MoeScoreExpr.NAME, embedding, modelUri, layer, options);
  }

  /** {@code moe_score_routed(...)} → {@code struct<output, topk_ids, topk_weights>}. */
  public static Column moeScoreRouted(Column embedding, String modelUri, int layer) {
    return call(MoeScoreExpr.ROUTED_NAME, embedding, modelUri, layer, Map.of());
  }

  /** {@code moe_score_routed(..., options)}. */
  public static Column moeScoreRouted(Column embedding, String modelUri, int layer, Map<String, String> options) {
    return call(MoeScoreExpr.ROUTED_NAME, embedding, modelUri, layer, options);
  }

  private static Column call(String fn, Column embedding, String modelUri, int layer, Map<String, String> options) {
    if (embedding == null) {
      throw new IllegalArgumentException(fn + ": embedding column must not be null");
    }
    if (modelUri == null || modelUri.isBlank()) {
      throw new IllegalArgumentException(fn + ": model URI must not be empty, got '" + modelUri + "'");
    }
    if (layer < 0) {
      throw new IllegalArgumentException(fn + ": layer must be >= 0, got " + layer);
    }
    if (options == null) {
      throw new IllegalArgumentException(fn + ": options must not be null (use the overload without options)");
    }
    List<Column> args = new ArrayList<>(List.of(embedding, functions.lit(modelUri), functions.lit(layer)));
    if (!options.isEmpty()) {
      List<Column> kv = new ArrayList<>();
      for (Map.Entry<String, String> e : new TreeMap<>(options).entrySet()) {
        if (e.getValue() == null) {
          throw new IllegalArgumentException(fn + ": option '" + e.getKey() + "' must not be null");
        }
        kv.add(functions.lit(e.getKey()));
        kv.add(functions.lit(e.getValue()));
      }
      args.add(functions.map(kv.toArray(new Column[0])));
    }
    return functions.call_function(fn, args.toArray(new Column[0]));
  }
}
