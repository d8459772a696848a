package org.moespark.spark;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.Unevaluable;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenContext;
import org.apache.spark.sql.catalyst.expressions.codegen.ExprCode;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.catalyst.util.MapData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;

/**
 * The call {@code moe_score(embedding, 'model-uri', layer [, options])} (or {@code moe_score_routed}).
 *
 * <p>It is only a marker in the plan: {@link ExtractMoeScore} moves every call into a {@link MoeEval} node
 * that {@link MoeStrategy} plans as the batched {@link MoeScoreExec}. It is {@link Unevaluable} (as Spark's
 * {@code PythonUDF}): {@link #eval} and code generation throw, so a call the rule did not extract fails
 * loudly instead of running row at a time, and the optimizer never folds it on the driver.
 *
 * <p>Arguments: {@code embedding} is {@code array<float>}, {@code array<double>} (cast to fp32) or
 * {@code binary} (little-endian fp32, 4·hidden bytes); {@code model-uri} a constant string (see
 * {@link ModelResolver}); {@code layer} a constant int; {@code options} an optional constant
 * {@code map<string,string>} overriding the {@link MoeConf} keys for this call.
 *
 * <p>Result: {@code moe_score} → {@code array<float>} of length hidden (the MoE block output, no residual);
 * {@code moe_score_routed} → {@code struct<output: array<float>, topk_ids: array<int>,
 * topk_weights: array<float>>}. Null for a bad row under {@code badRows=null}.
 */
public final class MoeScoreExpr extends Expression implements Unevaluable, Serializable {
  private static final long serialVersionUID = 1L;

  public static final String NAME = "moe_score";
  public static final String ROUTED_NAME = "moe_score_routed";

  /** {@code array<float>} without null elements. */
  public static final DataType SCORE_TYPE = DataTypes.createArrayType(DataTypes.FloatType, false);
  /** The type of {@code moe_score_routed}. */
  public static final StructType ROUTED_TYPE = new StructType(new StructField[] {
      DataTypes.createStructField("output", SCORE_TYPE, false),
      DataTypes.createStructField("topk_ids", DataTypes.createArrayType(DataTypes.IntegerType, false), false),
      DataTypes.createStructField("topk_weights", DataTypes.createArrayType(DataTypes.FloatType, false), false)});

  private final Seq<Expression> args;
  private final boolean routed;

  /** Constructor used by Catalyst's reflective copy: the arguments are exactly the product elements. */
  public MoeScoreExpr(Seq<Expression> args, boolean routed) {
    this.args = Objects.requireNonNull(args, "args");
    this.routed = routed;
  }

  /** The function builder of {@code moe_score} / {@code moe_score_routed}. */
  public static MoeScoreExpr build(Seq<Expression> args, boolean routed) {
    int n = args.size();
    if (n < 3 || n > 4) {
      throw new IllegalArgumentException((routed ? ROUTED_NAME : NAME)
          + "(embedding, 'model-uri', layer [, options]) takes 3 or 4 arguments, got " + n);
    }
    return new MoeScoreExpr(args, routed);
  }

  public boolean routed() {
    return routed;
  }

  public Expression input() {
    return args.apply(0);
  }

  /** The model URI (a constant). */
  public String modelUri() {
    Object v = args.apply(1).eval(null);
    if (v == null) {
      throw new IllegalArgumentException(prettyName() + ": model-uri must not be null");
    }
    return v.toString();
  }

  /** The layer index (a constant). */
  public int layer() {
    Object v = args.apply(2).eval(null);
    if (v == null) {
      throw new IllegalArgumentException(prettyName() + ": layer must not be null");
    }
    return ((Number) v).intValue();
  }

  /** The per-call options (empty when not given). */
  public Map<String, String> options() {
    Map<String, String> out = new LinkedHashMap<>();
    if (args.size() < 4) {
      return out;
    }
    Object v = args.apply(3).eval(null);
    if (v == null) {
      return out;
    }
    MapData m = (MapData) v;
    ArrayData k = m.keyArray();
    ArrayData vals = m.valueArray();
    for (int i = 0; i < m.numElements(); i++) {
      if (vals.isNullAt(i)) {
        throw new IllegalArgumentException(prettyName() + ": option '" + k.getUTF8String(i) + "' must not be null");
      }
      out.put(k.getUTF8String(i).toString(), vals.getUTF8String(i).toString());
    }
    return out;
  }

  /** Same call with a new embedding argument (the model, layer and options are kept). */
  public MoeScoreExpr withInput(Expression newInput) {
    List<Expression> l = new java.util.ArrayList<>(Scala.list(args));
    l.set(0, newInput);
    return new MoeScoreExpr(Scala.seq(l), routed);
  }

  @Override
  public TypeCheckResult checkInputDataTypes() {
    DataType in = input().dataType();
    boolean okIn = in instanceof BinaryType
        || (in instanceof ArrayType a && (a.elementType() instanceof FloatType || a.elementType() instanceof DoubleType));
    if (!okIn) {
      return new TypeCheckResult.TypeCheckFailure(prettyName() + ": embedding must be array<float>, array<double> "
          + "or binary (little-endian float32), got " + in.simpleString());
    }
    Expression model = args.apply(1);
    if (!(model.dataType() instanceof StringType) || !model.foldable()) {
      return new TypeCheckResult.TypeCheckFailure(prettyName() + ": model-uri must be a constant string, got "
          + model.sql() + " of type " + model.dataType().simpleString());
    }
    Expression layer = args.apply(2);
    if (!(layer.dataType() instanceof IntegerType) || !layer.foldable()) {
      return new TypeCheckResult.TypeCheckFailure(prettyName() + ": layer must be a constant int, got " + layer.sql()
          + " of type " + layer.dataType().simpleString());
    }
    if (args.size() == 4) {
      Expression opt = args.apply(3);
      if (!(opt.dataType() instanceof MapType mt) || !(mt.keyType() instanceof StringType)
          || !(mt.valueType() instanceof StringType) || !opt.foldable()) {
        return new TypeCheckResult.TypeCheckFailure(prettyName() + ": options must be a constant map<string,string>, got "
            + opt.sql() + " of type " + opt.dataType().simpleString());
      }
    }
    return TypeCheckResult.TypeCheckSuccess$.MODULE$;
  }

  @Override
  public Object eval(InternalRow row) {
    throw rowWise();
  }

  private IllegalStateException rowWise() {
    return new IllegalStateException(prettyName() + " was about to be evaluated one row at a time (" + sql()
        + "). It must be planned by the batched operator: install the extension with "
        + "spark.sql.extensions=org.moespark.spark.MoeExtensions or MoeExtensions.install(spark); if it is "
        + "installed, this plan shape is not supported yet (please report it)");
  }

  @Override
  public ExprCode doGenCode(CodegenContext ctx, ExprCode ev) {
    throw rowWise();
  }

  @Override
  public boolean foldable() {
    return false; // never constant-folded: that would evaluate it row-wise on the driver
  }

  @Override
  public boolean nullable() {
    return true;
  }

  @Override
  public DataType dataType() {
    return routed ? ROUTED_TYPE : SCORE_TYPE;
  }

  @Override
  public String prettyName() {
    return routed ? ROUTED_NAME : NAME;
  }

  @Override
  public Seq<Expression> children() {
    return args;
  }

  @Override
  public Expression withNewChildrenInternal(IndexedSeq<Expression> newChildren) {
    return new MoeScoreExpr(newChildren.toList(), routed);
  }

  @Override
  public int productArity() {
    return 2;
  }

  @Override
  public Object productElement(int n) {
    return switch (n) {
      case 0 -> args;
      case 1 -> routed;
      default -> throw new IndexOutOfBoundsException("MoeScoreExpr has 2 product elements, asked for " + n);
    };
  }

  @Override
  public boolean canEqual(Object that) {
    return that instanceof MoeScoreExpr;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MoeScoreExpr m && m.routed == routed && m.args.equals(args);
  }

  @Override
  public int hashCode() {
    return Objects.hash(args, routed);
  }
}
