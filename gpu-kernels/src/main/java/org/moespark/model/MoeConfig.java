package org.moespark.model;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What the MoE block of a Hugging Face model needs from its {@code config.json}
 * (models-and-formats.md §2.1–2.7), for {@code model_type} ∈ {mixtral, qwen2_moe, qwen3_moe,
 * olmoe, deepseek_v3, gpt_oss}. Unknown keys are ignored (and kept in {@link #raw()}).
 *
 * <p>Per family (key names as in the released configs; aliases accepted, and an alias that
 * disagrees with the primary key is an error):
 * <ul>
 *   <li>experts: mixtral/gpt_oss {@code num_local_experts} (alias {@code num_experts});
 *       qwen2_moe/qwen3_moe/olmoe {@code num_experts} (alias {@code num_local_experts}, which
 *       transformers 5.17 writes for qwen3_moe); deepseek_v3 {@code n_routed_experts} (alias
 *       {@code num_local_experts}).
 *   <li>expert width I: {@code intermediate_size} for mixtral, olmoe, gpt_oss;
 *       {@code moe_intermediate_size} for qwen2_moe, qwen3_moe, deepseek_v3.
 *   <li>{@code norm_topk_prob}: mixtral always renormalises (no flag; the key is ignored as in
 *       transformers); qwen2_moe/qwen3_moe/olmoe default false; deepseek_v3 default true;
 *       gpt_oss has no flag — its softmax over the k selected logits is already normalised, so
 *       {@link #normTopkProb()} reports true.
 *   <li>shared experts: qwen2_moe one sigmoid-gated shared expert of width
 *       {@code shared_expert_intermediate_size}; deepseek_v3 {@code n_shared_experts} (default 1)
 *       ungated, fused into one MLP of width {@code moe_intermediate_size × n_shared_experts}.
 *   <li>deepseek_v3 routing: {@code n_group} (8), {@code topk_group} (4),
 *       {@code routed_scaling_factor} (2.5); {@code scoring_func} and {@code topk_method} must be
 *       {@code sigmoid} / {@code noaux_tc} when present — transformers ignores them and hard-codes
 *       that router, so a config asking for another one is rejected rather than run wrongly.
 *   <li>which layers are MoE: mixtral, olmoe, gpt_oss all; qwen2_moe/qwen3_moe iff
 *       {@code layer ∉ mlp_only_layers && (layer+1) % decoder_sparse_step == 0}; deepseek_v3 iff
 *       {@code layer >= first_k_dense_replace} — transformers' rule, which ignores
 *       {@code moe_layer_freq} (kept in {@link #moeLayerFreq()}; 1 in every released config).
 *   <li>gpt_oss: router and experts have biases; SwiGLU limit {@code swiglu_limit} (7.0) and the
 *       alpha 1.702 that transformers hard-codes.
 *   <li>{@code quantization_config}: {@code fp8} (block FP8 E4M3, {@code weight_block_size},
 *       default [128,128], optional {@code scale_fmt: ue8m0}), {@code mxfp4} (GPT-OSS), and
 *       {@code modelopt} with {@code quant_algo: NVFP4}; others are rejected.
 * </ul>
 * The hidden activation must be {@code silu} for the SwiGLU families (gpt_oss's value is ignored,
 * its activation is fixed). Missing required keys, wrong types, an unsupported model_type and
 * inconsistent values are {@link IllegalArgumentException}s naming the key and the file.
 */
public final class MoeConfig {

  /** The supported model families, by {@code model_type}. */
  public enum Family {
    MIXTRAL("mixtral", "MixtralForCausalLM"),
    QWEN2_MOE("qwen2_moe", "Qwen2MoeForCausalLM"),
    QWEN3_MOE("qwen3_moe", "Qwen3MoeForCausalLM"),
    OLMOE("olmoe", "OlmoeForCausalLM"),
    DEEPSEEK_V3("deepseek_v3", "DeepseekV3ForCausalLM"),
    GPT_OSS("gpt_oss", "GptOssForCausalLM");

    private final String modelType;
    private final String architecture;

    Family(String modelType, String architecture) {
      this.modelType = modelType;
      this.architecture = architecture;
    }

    /** The {@code model_type} string. */
    public String modelType() {
      return modelType;
    }

    /** The transformers class named in {@code architectures}. */
    public String architecture() {
      return architecture;
    }

    /** The family for a {@code model_type}, or null. */
    public static Family fromModelType(String s) {
      for (Family f : values()) {
        if (f.modelType.equals(s)) {
          return f;
        }
      }
      return null;
    }
  }

  /** How the router turns logits into (expert, weight) pairs (§2.7). */
  public enum RoutingKind {
    /** softmax over all experts (fp32), top-k, optional renormalisation: Mixtral, Qwen2/3-MoE, OLMoE. */
    SOFTMAX_TOPK,
    /** top-k on raw logits (router has a bias), softmax over the k: GPT-OSS. */
    TOPK_SOFTMAX,
    /** sigmoid scores, group-limited top-k on scores + correction bias, weights from unbiased scores × scale: DeepSeek-V3. */
    SIGMOID_GROUPED
  }

  /** The checkpoint's weight quantization. */
  public enum QuantMethod {
    NONE,
    /** DeepSeek-style FP8 E4M3 with per-block {@code weight_scale_inv}. */
    FP8_BLOCK,
    /** GPT-OSS MXFP4 expert weights ({@code *_blocks} / {@code *_scales}). */
    MXFP4,
    /** NVIDIA ModelOpt NVFP4 ({@code weight}, {@code weight_scale}, {@code weight_scale_2}). */
    NVFP4
  }

  /** {@code quantization_config}, as far as the MoE block needs it. */
  public static final class Quantization {
    public static final Quantization NONE = new Quantization(QuantMethod.NONE, 0, 0, null, 0, List.of());

    private final QuantMethod method;
    private final int blockRows;
    private final int blockCols;
    private final String scaleFmt;
    private final int groupSize;
    private final List<String> excluded;

    private Quantization(QuantMethod method, int blockRows, int blockCols, String scaleFmt, int groupSize,
        List<String> excluded) {
      this.method = method;
      this.blockRows = blockRows;
      this.blockCols = blockCols;
      this.scaleFmt = scaleFmt;
      this.groupSize = groupSize;
      this.excluded = List.copyOf(excluded);
    }

    /** FP8 block quantization with a {@code [rows, cols]} weight block; {@code scaleFmt} null or "ue8m0". */
    public static Quantization fp8Block(int blockRows, int blockCols, String scaleFmt) {
      if (blockRows <= 0 || blockCols <= 0) {
        throw new IllegalArgumentException("weight_block_size must be positive, got [" + blockRows + ", " + blockCols + "]");
      }
      return new Quantization(QuantMethod.FP8_BLOCK, blockRows, blockCols, scaleFmt, 0, List.of());
    }

    /** MXFP4 (32-element blocks, E8M0 scales) with the modules kept unquantized. */
    public static Quantization mxfp4(List<String> modulesToNotConvert) {
      return new Quantization(QuantMethod.MXFP4, 0, 0, null, 32, modulesToNotConvert);
    }

    /** NVFP4 with the given group size (16 in every ModelOpt export) and ignored modules. */
    public static Quantization nvfp4(int groupSize, List<String> ignore) {
      if (groupSize <= 0) {
        throw new IllegalArgumentException("NVFP4 group_size must be positive, got " + groupSize);
      }
      return new Quantization(QuantMethod.NVFP4, 0, 0, null, groupSize, ignore);
    }

    public QuantMethod method() {
      return method;
    }

    /** FP8: block rows (output dim), else 0. */
    public int blockRows() {
      return blockRows;
    }

    /** FP8: block columns (input dim), else 0. */
    public int blockCols() {
      return blockCols;
    }

    /** FP8: {@code scale_fmt} ("ue8m0") or null. */
    public String scaleFmt() {
      return scaleFmt;
    }

    /** MXFP4: 32; NVFP4: the group size; else 0. */
    public int groupSize() {
      return groupSize;
    }

    /** Modules left unquantized ({@code modules_to_not_convert} / {@code ignore}). */
    public List<String> excludedModules() {
      return excluded;
    }

    Map<String, Object> toMap() {
      Map<String, Object> m = new TreeMap<>();
      switch (method) {
        case FP8_BLOCK:
          m.put("quant_method", "fp8");
          m.put("fmt", "e4m3");
          m.put("activation_scheme", "dynamic");
          m.put("weight_block_size", new int[] {blockRows, blockCols});
          if (scaleFmt != null) {
            m.put("scale_fmt", scaleFmt);
          }
          break;
        case MXFP4:
          m.put("quant_method", "mxfp4");
          m.put("modules_to_not_convert", excluded);
          break;
        case NVFP4: {
          m.put("quant_method", "modelopt");
          m.put("quant_algo", "NVFP4");
          Map<String, Object> weights = new TreeMap<>();
          weights.put("num_bits", 4);
          weights.put("type", "float");
          weights.put("group_size", groupSize);
          m.put("config_groups", Map.of("group_0", Map.of("weights", weights)));
          m.put("ignore", excluded);
          break;
        }
        default:
          throw new IllegalStateException("no quantization_config for " + method);
      }
      return m;
    }

    @Override
    public String toString() {
      switch (method) {
        case FP8_BLOCK:
          return "FP8_BLOCK[" + blockRows + "x" + blockCols + (scaleFmt != null ? ", " + scaleFmt : "") + "]";
        case NVFP4:
        case MXFP4:
          return method + "[group " + groupSize + "]";
        default:
          return method.toString();
      }
    }
  }

  /** transformers' hard-coded GPT-OSS SwiGLU alpha. */
  public static final double GPT_OSS_SWIGLU_ALPHA = 1.702;

  private final String source;
  private final Map<String, Object> raw;
  private final Family family;
  private final int hiddenSize;
  private final int numExperts;
  private final int topK;
  private final int expertIntermediateSize;
  private final int denseIntermediateSize;
  private final int numHiddenLayers;
  private final boolean normTopkProb;
  private final String hiddenAct;
  private final int sharedExpertIntermediateSize;
  private final int numSharedExperts;
  private final int nGroup;
  private final int topkGroup;
  private final double routedScalingFactor;
  private final int firstKDenseReplace;
  private final int moeLayerFreq;
  private final int decoderSparseStep;
  private final int[] mlpOnlyLayers;
  private final double swigluLimit;
  private final Quantization quantization;

  private MoeConfig(Builder b, String source, Map<String, Object> raw) {
    this.source = source;
    this.raw = raw;
    this.family = b.family;
    this.hiddenSize = b.hiddenSize;
    this.numExperts = b.numExperts;
    this.topK = b.topK;
    this.expertIntermediateSize = b.expertIntermediateSize;
    this.denseIntermediateSize = b.denseIntermediateSize;
    this.numHiddenLayers = b.numHiddenLayers;
    this.normTopkProb = family == Family.MIXTRAL || family == Family.GPT_OSS || b.normTopkProb;
    this.hiddenAct = b.hiddenAct;
    this.sharedExpertIntermediateSize = b.sharedExpertIntermediateSize;
    this.numSharedExperts = b.numSharedExperts;
    this.nGroup = b.nGroup;
    this.topkGroup = b.topkGroup;
    this.routedScalingFactor = b.routedScalingFactor;
    this.firstKDenseReplace = b.firstKDenseReplace;
    this.moeLayerFreq = b.moeLayerFreq;
    this.decoderSparseStep = b.decoderSparseStep;
    this.mlpOnlyLayers = b.mlpOnlyLayers.clone();
    this.swigluLimit = b.swigluLimit;
    this.quantization = b.quantization;
    validate();
  }

  private IllegalArgumentException bad(String msg) {
    return new IllegalArgumentException("config " + source + " (" + family.modelType + "): " + msg);
  }

  private void validate() {
    positive("hidden_size", hiddenSize);
    positive(expertsKey(family), numExperts);
    positive(intermediateKey(family), expertIntermediateSize);
    positive("num_hidden_layers", numHiddenLayers);
    if (topK < 1 || topK > numExperts) {
      throw bad("num_experts_per_tok must be in [1, " + numExperts + "], got " + topK);
    }
    if (family != Family.GPT_OSS && !"silu".equals(hiddenAct)) {
      throw bad("hidden_act must be \"silu\" (the experts are SwiGLU with SiLU), got \"" + hiddenAct + "\"");
    }
    switch (family) {
      case QWEN2_MOE:
        positive("shared_expert_intermediate_size", sharedExpertIntermediateSize);
        // fall through
      case QWEN3_MOE:
        positive("decoder_sparse_step", decoderSparseStep);
        for (int l : mlpOnlyLayers) {
          if (l < 0) {
            throw bad("mlp_only_layers must hold layer indices >= 0, got " + Arrays.toString(mlpOnlyLayers));
          }
        }
        break;
      case DEEPSEEK_V3:
        positive("n_group", nGroup);
        if (numExperts % nGroup != 0) {
          throw bad("n_routed_experts " + numExperts + " is not divisible by n_group " + nGroup);
        }
        if (numExperts / nGroup < 2) {
          throw bad("groups of " + (numExperts / nGroup) + " expert(s): the group score sums the top 2 scores of a group,"
              + " so n_routed_experts / n_group must be >= 2 (n_routed_experts=" + numExperts + ", n_group=" + nGroup + ")");
        }
        if (topkGroup < 1 || topkGroup > nGroup) {
          throw bad("topk_group must be in [1, n_group=" + nGroup + "], got " + topkGroup);
        }
        if (topK > topkGroup * (numExperts / nGroup)) {
          throw bad("num_experts_per_tok " + topK + " exceeds the " + topkGroup * (numExperts / nGroup)
              + " experts of the topk_group=" + topkGroup + " kept groups");
        }
        if (!(routedScalingFactor > 0) || Double.isInfinite(routedScalingFactor)) {
          throw bad("routed_scaling_factor must be positive and finite, got " + routedScalingFactor);
        }
        if (numSharedExperts < 0) {
          throw bad("n_shared_experts must be >= 0, got " + numSharedExperts);
        }
        if (firstKDenseReplace < 0) {
          throw bad("first_k_dense_replace must be >= 0, got " + firstKDenseReplace);
        }
        positive("moe_layer_freq", moeLayerFreq);
        break;
      case GPT_OSS:
        if (!(swigluLimit > 0) || Double.isInfinite(swigluLimit)) {
          throw bad("swiglu_limit must be positive and finite, got " + swigluLimit);
        }
        break;
      default:
        break;
    }
    if (quantization.method() == QuantMethod.MXFP4 && family != Family.GPT_OSS) {
      throw bad("quant_method mxfp4 is supported for gpt_oss checkpoints only");
    }
  }

  private void positive(String key, long v) {
    if (v <= 0) {
      throw bad(key + " must be > 0, got " + v);
    }
  }

  // ------------------------------------------------------------------------------------------
  // parsing

  /** Reads {@code config.json} from a model directory, or the given JSON file. */
  public static MoeConfig load(Path dirOrFile) throws IOException {
    Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve("config.json") : dirOrFile;
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException("config " + file + " does not exist");
    }
    long size = Files.size(file);
    if (size > Json.DEFAULT_MAX_BYTES) {
      throw new IllegalArgumentException("config " + file + " is " + size + " bytes, over the limit of " + Json.DEFAULT_MAX_BYTES);
    }
    return parse(Files.readAllBytes(file), file.toString());
  }

  /** Parses a config.json text; {@code source} names it in error messages. */
  public static MoeConfig parse(byte[] json, String source) {
    Object root;
    try {
      root = Json.parse(json);
    } catch (JsonException e) {
      throw new IllegalArgumentException("config " + source + " is not valid JSON: " + e.getMessage(), e);
    }
    if (!(root instanceof Map)) {
      throw new IllegalArgumentException("config " + source + " must be a JSON object, got " + Json.typeName(root));
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> m = (Map<String, Object>) root;
    return new Reader(m, source).read();
  }

  /** Parses a config.json given as a string. */
  public static MoeConfig parse(String json, String source) {
    return parse(json.getBytes(StandardCharsets.UTF_8), source);
  }

  private static String expertsKey(Family f) {
    switch (f) {
      case MIXTRAL:
      case GPT_OSS:
        return "num_local_experts";
      case DEEPSEEK_V3:
        return "n_routed_experts";
      default:
        return "num_experts";
    }
  }

  private static String[] expertsAliases(Family f) {
    switch (f) {
      case MIXTRAL:
      case GPT_OSS:
        return new String[] {"num_local_experts", "num_experts"};
      case DEEPSEEK_V3:
        return new String[] {"n_routed_experts", "num_local_experts"};
      default:
        return new String[] {"num_experts", "num_local_experts"};
    }
  }

  private static String intermediateKey(Family f) {
    switch (f) {
      case QWEN2_MOE:
      case QWEN3_MOE:
      case DEEPSEEK_V3:
        return "moe_intermediate_size";
      default:
        return "intermediate_size";
    }
  }

  private static final class Reader {
    final Map<String, Object> m;
    final String source;
    String where;

    Reader(Map<String, Object> m, String source) {
      this.m = m;
      this.source = source;
      this.where = "config " + source;
    }

    IllegalArgumentException bad(String msg) {
      return new IllegalArgumentException(where + ": " + msg);
    }

    boolean has(String key) {
      return m.get(key) != null;
    }

    int requireInt(String key) {
      if (!has(key)) {
        throw bad("missing required key '" + key + "'");
      }
      return toInt(key, m.get(key));
    }

    int optInt(String key, int dflt) {
      return has(key) ? toInt(key, m.get(key)) : dflt;
    }

    int toInt(String key, Object v) {
      if (!(v instanceof Long) || (Long) v < Integer.MIN_VALUE || (Long) v > Integer.MAX_VALUE) {
        throw bad("key '" + key + "' must be a 32-bit integer, got " + (v instanceof Number ? v : Json.typeName(v)));
      }
      return (int) (long) (Long) v;
    }

    double optDouble(String key, double dflt) {
      if (!has(key)) {
        return dflt;
      }
      Object v = m.get(key);
      if (!(v instanceof Number)) {
        throw bad("key '" + key + "' must be a number, got " + Json.typeName(v));
      }
      return ((Number) v).doubleValue();
    }

    boolean optBool(String key, boolean dflt) {
      if (!has(key)) {
        return dflt;
      }
      Object v = m.get(key);
      if (!(v instanceof Boolean)) {
        throw bad("key '" + key + "' must be true or false, got " + (v instanceof Number ? v : Json.typeName(v)));
      }
      return (Boolean) v;
    }

    String optString(String key, String dflt) {
      if (!has(key)) {
        return dflt;
      }
      Object v = m.get(key);
      if (!(v instanceof String)) {
        throw bad("key '" + key + "' must be a string, got " + Json.typeName(v));
      }
      return (String) v;
    }

    int[] optIntList(String key) {
      if (!has(key)) {
        return new int[0];
      }
      Object v = m.get(key);
      if (!(v instanceof List)) {
        throw bad("key '" + key + "' must be an array of integers, got " + Json.typeName(v));
      }
      List<?> l = (List<?>) v;
      int[] out = new int[l.size()];
      for (int i = 0; i < out.length; i++) {
        out[i] = toInt(key + "[" + i + "]", l.get(i));
      }
      return out;
    }

    int experts(Family f) {
      String[] keys = expertsAliases(f);
      Integer value = null;
      String from = null;
      for (String k : keys) {
        if (has(k)) {
          int v = toInt(k, m.get(k));
          if (value != null && value != v) {
            throw bad("'" + from + "' = " + value + " and its alias '" + k + "' = " + v + " disagree");
          }
          if (value == null) {
            value = v;
            from = k;
          }
        }
      }
      if (value == null) {
        throw bad("missing required key '" + keys[0] + "' (or its alias '" + keys[1] + "')");
      }
      return value;
    }

    MoeConfig read() {
      Object mt = m.get("model_type");
      if (!(mt instanceof String)) {
        throw bad("missing required key 'model_type' (got " + Json.typeName(mt) + ")");
      }
      Family f = Family.fromModelType((String) mt);
      if (f == null) {
        List<String> ok = new ArrayList<>();
        for (Family x : Family.values()) {
          ok.add(x.modelType);
        }
        throw bad("model_type \"" + mt + "\" is not supported (supported: " + ok + ")");
      }
      where = "config " + source + " (" + f.modelType + ")";
      Builder b = new Builder(f);
      b.hiddenSize = requireInt("hidden_size");
      b.numHiddenLayers = requireInt("num_hidden_layers");
      b.numExperts = experts(f);
      b.topK = requireInt("num_experts_per_tok");
      b.expertIntermediateSize = requireInt(intermediateKey(f));
      if (f == Family.QWEN2_MOE || f == Family.QWEN3_MOE || f == Family.DEEPSEEK_V3) {
        b.denseIntermediateSize = optInt("intermediate_size", 0);
      }
      b.hiddenAct = optString("hidden_act", "silu");
      if (f != Family.MIXTRAL && f != Family.GPT_OSS) {
        b.normTopkProb = optBool("norm_topk_prob", b.normTopkProb);
      }
      switch (f) {
        case QWEN2_MOE:
          b.sharedExpertIntermediateSize = requireInt("shared_expert_intermediate_size");
          b.numSharedExperts = 1;
          // fall through
        case QWEN3_MOE:
          b.decoderSparseStep = optInt("decoder_sparse_step", 1);
          b.mlpOnlyLayers = optIntList("mlp_only_layers");
          break;
        case DEEPSEEK_V3: {
          b.numSharedExperts = optInt("n_shared_experts", 1);
          b.sharedExpertIntermediateSize = b.expertIntermediateSize * b.numSharedExperts;
          b.nGroup = optInt("n_group", 8);
          b.topkGroup = optInt("topk_group", 4);
          b.routedScalingFactor = optDouble("routed_scaling_factor", 2.5);
          b.firstKDenseReplace = optInt("first_k_dense_replace", 3);
          b.moeLayerFreq = optInt("moe_layer_freq", 1);
          String scoring = optString("scoring_func", "sigmoid");
          if (!scoring.equals("sigmoid")) {
            throw bad("scoring_func \"" + scoring + "\" is not supported: deepseek_v3 routing is sigmoid"
                + " (transformers hard-codes it; a softmax router would be DeepSeek-V2 style)");
          }
          String method = optString("topk_method", "noaux_tc");
          if (!method.equals("noaux_tc")) {
            throw bad("topk_method \"" + method + "\" is not supported: deepseek_v3 routing is noaux_tc"
                + " (group-limited top-k on sigmoid scores + e_score_correction_bias)");
          }
          break;
        }
        case GPT_OSS:
          b.swigluLimit = optDouble("swiglu_limit", 7.0);
          break;
        default:
          break;
      }
      b.quantization = quantization();
      return new MoeConfig(b, source, m);
    }

    Quantization quantization() {
      Object q = m.get("quantization_config");
      if (q == null) {
        return Quantization.NONE;
      }
      if (!(q instanceof Map)) {
        throw bad("quantization_config must be an object, got " + Json.typeName(q));
      }
      @SuppressWarnings("unchecked")
      Reader r = new Reader((Map<String, Object>) q, source);
      r.where = where + " quantization_config";
      String method = r.optString("quant_method", null);
      if (method == null) {
        throw r.bad("missing required key 'quant_method'");
      }
      switch (method) {
        case "fp8": {
          String fmt = r.optString("fmt", "e4m3");
          if (!fmt.equals("e4m3")) {
            throw r.bad("fmt \"" + fmt + "\" is not supported (only e4m3)");
          }
          int[] block = r.has("weight_block_size") ? r.optIntList("weight_block_size") : new int[] {128, 128};
          if (block.length != 2 || block[0] <= 0 || block[1] <= 0) {
            throw r.bad("weight_block_size must be two positive integers [rows, cols], got " + Arrays.toString(block));
          }
          String scaleFmt = r.optString("scale_fmt", null);
          if (scaleFmt != null && !scaleFmt.equals("ue8m0")) {
            throw r.bad("scale_fmt \"" + scaleFmt + "\" is not supported (only ue8m0 or absent)");
          }
          return Quantization.fp8Block(block[0], block[1], scaleFmt);
        }
        case "mxfp4":
          return Quantization.mxfp4(r.stringList("modules_to_not_convert"));
        case "modelopt": {
          String algo = r.optString("quant_algo", null);
          if (!"NVFP4".equals(algo)) {
            throw r.bad("modelopt quant_algo \"" + algo + "\" is not supported (only NVFP4)");
          }
          int group = 16;
          Object groups = r.m.get("config_groups");
          if (groups instanceof Map && ((Map<?, ?>) groups).get("group_0") instanceof Map) {
            Object w = ((Map<?, ?>) ((Map<?, ?>) groups).get("group_0")).get("weights");
            if (w instanceof Map && ((Map<?, ?>) w).get("group_size") != null) {
              group = r.toInt("config_groups.group_0.weights.group_size", ((Map<?, ?>) w).get("group_size"));
            }
          } else if (r.has("group_size")) {
            group = r.optInt("group_size", 16);
          }
          if (group != 16) {
            throw r.bad("NVFP4 group_size must be 16, got " + group);
          }
          List<String> ignore = r.has("ignore") ? r.stringList("ignore") : r.stringList("exclude_modules");
          return Quantization.nvfp4(group, ignore);
        }
        default:
          throw r.bad("quant_method \"" + method + "\" is not supported (fp8, mxfp4, modelopt NVFP4)");
      }
    }

    List<String> stringList(String key) {
      if (!has(key)) {
        return List.of();
      }
      Object v = m.get(key);
      if (!(v instanceof List)) {
        throw bad("key '" + key + "' must be an array of strings, got " + Json.typeName(v));
      }
      List<String> out = new ArrayList<>();
      for (Object o : (List<?>) v) {
        if (!(o instanceof String)) {
          throw bad("key '" + key + "' must hold strings, got " + Json.typeName(o));
        }
        out.add((String) o);
      }
      return out;
    }
  }

  // ------------------------------------------------------------------------------------------
  // builder and writer

  /** A builder starting from the family's transformers defaults, for generating configs. */
  public static Builder builder(Family family) {
    return new Builder(family);
  }

  /** Mutable config under construction; {@link #build()} validates it. */
  public static final class Builder {
    private final Family family;
    private int hiddenSize;
    private int numExperts;
    private int topK;
    private int expertIntermediateSize;
    private int denseIntermediateSize;
    private int numHiddenLayers = 1;
    private boolean normTopkProb;
    private String hiddenAct = "silu";
    private int sharedExpertIntermediateSize;
    private int numSharedExperts;
    private int nGroup = 1;
    private int topkGroup = 1;
    private double routedScalingFactor = 1.0;
    private int firstKDenseReplace;
    private int moeLayerFreq = 1;
    private int decoderSparseStep = 1;
    private int[] mlpOnlyLayers = new int[0];
    private double swigluLimit = 7.0;
    private Quantization quantization = Quantization.NONE;

    private Builder(Family family) {
      if (family == null) {
        throw new IllegalArgumentException("family must not be null");
      }
      this.family = family;
      if (family == Family.DEEPSEEK_V3) {
        normTopkProb = true;
        numSharedExperts = 1;
        nGroup = 8;
        topkGroup = 4;
        routedScalingFactor = 2.5;
        firstKDenseReplace = 3;
      }
    }

    public Builder hiddenSize(int v) {
      hiddenSize = v;
      return this;
    }

    public Builder numExperts(int v) {
      numExperts = v;
      return this;
    }

    public Builder topK(int v) {
      topK = v;
      return this;
    }

    public Builder expertIntermediateSize(int v) {
      expertIntermediateSize = v;
      return this;
    }

    /** {@code intermediate_size} of the dense MLP layers (Qwen, DeepSeek); 0 = not written. */
    public Builder denseIntermediateSize(int v) {
      denseIntermediateSize = v;
      return this;
    }

    public Builder numHiddenLayers(int v) {
      numHiddenLayers = v;
      return this;
    }

    public Builder normTopkProb(boolean v) {
      normTopkProb = v;
      return this;
    }

    public Builder hiddenAct(String v) {
      hiddenAct = v;
      return this;
    }

    /** Qwen2-MoE: {@code shared_expert_intermediate_size}. */
    public Builder sharedExpertIntermediateSize(int v) {
      sharedExpertIntermediateSize = v;
      numSharedExperts = 1;
      return this;
    }

    /** DeepSeek-V3: {@code n_shared_experts}. */
    public Builder numSharedExperts(int v) {
      numSharedExperts = v;
      return this;
    }

    public Builder nGroup(int v) {
      nGroup = v;
      return this;
    }

    public Builder topkGroup(int v) {
      topkGroup = v;
      return this;
    }

    public Builder routedScalingFactor(double v) {
      routedScalingFactor = v;
      return this;
    }

    public Builder firstKDenseReplace(int v) {
      firstKDenseReplace = v;
      return this;
    }

    public Builder moeLayerFreq(int v) {
      moeLayerFreq = v;
      return this;
    }

    public Builder decoderSparseStep(int v) {
      decoderSparseStep = v;
      return this;
    }

    public Builder mlpOnlyLayers(int... v) {
      mlpOnlyLayers = v.clone();
      return this;
    }

    public Builder swigluLimit(double v) {
      swigluLimit = v;
      return this;
    }

    public Builder quantization(Quantization q) {
      quantization = q == null ? Quantization.NONE : q;
      return this;
    }

    public MoeConfig build() {
      if (family == Family.DEEPSEEK_V3) {
        sharedExpertIntermediateSize = expertIntermediateSize * numSharedExperts;
      }
      if (family != Family.QWEN2_MOE && family != Family.DEEPSEEK_V3) {
        sharedExpertIntermediateSize = 0;
        numSharedExperts = 0;
      }
      return new MoeConfig(this, "<builder " + family.modelType + ">", null);
    }
  }

  /** The config as a sorted key → value map in HF key names (what {@link #toJson()} writes). */
  public Map<String, Object> toMap() {
    Map<String, Object> m = new TreeMap<>();
    m.put("model_type", family.modelType);
    m.put("architectures", List.of(family.architecture));
    m.put("hidden_size", hiddenSize);
    m.put("num_hidden_layers", numHiddenLayers);
    m.put("hidden_act", hiddenAct);
    m.put("num_experts_per_tok", topK);
    m.put(expertsKey(family), numExperts);
    m.put(intermediateKey(family), expertIntermediateSize);
    if (denseIntermediateSize > 0) {
      m.put("intermediate_size", denseIntermediateSize);
    }
    switch (family) {
      case QWEN2_MOE:
        m.put("shared_expert_intermediate_size", sharedExpertIntermediateSize);
        // fall through
      case QWEN3_MOE:
        m.put("norm_topk_prob", normTopkProb);
        m.put("decoder_sparse_step", decoderSparseStep);
        m.put("mlp_only_layers", mlpOnlyLayers);
        break;
      case OLMOE:
        m.put("norm_topk_prob", normTopkProb);
        break;
      case DEEPSEEK_V3:
        m.put("norm_topk_prob", normTopkProb);
        m.put("n_shared_experts", numSharedExperts);
        m.put("n_group", nGroup);
        m.put("topk_group", topkGroup);
        m.put("routed_scaling_factor", routedScalingFactor);
        m.put("first_k_dense_replace", firstKDenseReplace);
        m.put("moe_layer_freq", moeLayerFreq);
        m.put("scoring_func", "sigmoid");
        m.put("topk_method", "noaux_tc");
        break;
      case GPT_OSS:
        m.put("swiglu_limit", swigluLimit);
        break;
      default:
        break;
    }
    if (quantization.method() != QuantMethod.NONE) {
      m.put("quantization_config", quantization.toMap());
    }
    return m;
  }

  /** A config.json text (sorted keys, indent 2, like transformers' {@code to_json_string}). */
  public String toJson() {
    return Json.writePretty(toMap());
  }

  /** Writes {@code config.json} into {@code dir}. */
  public void write(Path dir) throws IOException {
    Files.write(dir.resolve("config.json"), toJson().getBytes(StandardCharsets.UTF_8));
  }

  // ------------------------------------------------------------------------------------------
  // layers

  /** Whether decoder layer {@code layer} (0-based) has an MoE block; see the class comment for the rules. */
  public boolean isMoeLayer(int layer) {
    checkLayer(layer);
    return denseReason(layer) == null;
  }

  /** Throws an {@link IllegalArgumentException} explaining why {@code layer} is dense, if it is. */
  public void requireMoeLayer(int layer) {
    checkLayer(layer);
    String why = denseReason(layer);
    if (why != null) {
      throw new IllegalArgumentException("layer " + layer + " of " + family.modelType + " is dense (" + why
          + "), it has no MoE block (config " + source + ")");
    }
  }

  private void checkLayer(int layer) {
    if (layer < 0 || layer >= numHiddenLayers) {
      throw new IllegalArgumentException("layer " + layer + " is outside [0, num_hidden_layers=" + numHiddenLayers
          + ") of " + family.modelType + " (config " + source + ")");
    }
  }

  private String denseReason(int layer) {
    switch (family) {
      case QWEN2_MOE:
      case QWEN3_MOE:
        for (int l : mlpOnlyLayers) {
          if (l == layer) {
            return "mlp_only_layers=" + Arrays.toString(mlpOnlyLayers);
          }
        }
        if ((layer + 1) % decoderSparseStep != 0) {
          return "decoder_sparse_step=" + decoderSparseStep + ": MoE layers are those with (layer+1) % "
              + decoderSparseStep + " == 0";
        }
        return null;
      case DEEPSEEK_V3:
        return layer < firstKDenseReplace ? "first_k_dense_replace=" + firstKDenseReplace : null;
      default:
        return null;
    }
  }

  // ------------------------------------------------------------------------------------------
  // accessors

  /** Where this config came from (file path, or a builder marker). */
  public String source() {
    return source;
  }

  /** The parsed config.json (all keys), or an empty map for a built config. */
  public Map<String, Object> raw() {
    return raw == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(raw));
  }

  public Family family() {
    return family;
  }

  public String modelType() {
    return family.modelType;
  }

  /** Router algorithm of the family. */
  public RoutingKind routingKind() {
    switch (family) {
      case GPT_OSS:
        return RoutingKind.TOPK_SOFTMAX;
      case DEEPSEEK_V3:
        return RoutingKind.SIGMOID_GROUPED;
      default:
        return RoutingKind.SOFTMAX_TOPK;
    }
  }

  /** H. */
  public int hiddenSize() {
    return hiddenSize;
  }

  /** E, the number of routed experts. */
  public int numExperts() {
    return numExperts;
  }

  /** k, {@code num_experts_per_tok}. */
  public int topK() {
    return topK;
  }

  /** I, the width of one routed expert. */
  public int expertIntermediateSize() {
    return expertIntermediateSize;
  }

  /** {@code intermediate_size} of dense MLP layers for Qwen/DeepSeek (0 if absent); not used by the MoE block. */
  public int denseIntermediateSize() {
    return denseIntermediateSize;
  }

  public int numHiddenLayers() {
    return numHiddenLayers;
  }

  /** Whether top-k weights are renormalised to sum 1 (see the class comment per family). */
  public boolean normTopkProb() {
    return normTopkProb;
  }

  public String hiddenAct() {
    return hiddenAct;
  }

  /** Width of the shared expert MLP (Qwen2: shared_expert_intermediate_size; DeepSeek: I × n_shared_experts); 0 if none. */
  public int sharedExpertIntermediateSize() {
    return numSharedExperts == 0 ? 0 : sharedExpertIntermediateSize;
  }

  /** Number of shared experts (Qwen2-MoE 1, DeepSeek n_shared_experts, others 0). */
  public int numSharedExperts() {
    return numSharedExperts;
  }

  /** Whether the shared expert output is multiplied by sigmoid(x · shared_expert_gateᵀ) (Qwen2-MoE). */
  public boolean sharedExpertGated() {
    return family == Family.QWEN2_MOE;
  }

  /** DeepSeek-V3 {@code n_group} (1 for other families). */
  public int nGroup() {
    return family == Family.DEEPSEEK_V3 ? nGroup : 1;
  }

  /** DeepSeek-V3 {@code topk_group} (1 for other families). */
  public int topkGroup() {
    return family == Family.DEEPSEEK_V3 ? topkGroup : 1;
  }

  /** DeepSeek-V3 {@code routed_scaling_factor} (1 for other families). */
  public double routedScalingFactor() {
    return family == Family.DEEPSEEK_V3 ? routedScalingFactor : 1.0;
  }

  /** DeepSeek-V3 {@code first_k_dense_replace} (0 for other families). */
  public int firstKDenseReplace() {
    return family == Family.DEEPSEEK_V3 ? firstKDenseReplace : 0;
  }

  /** DeepSeek-V3 {@code moe_layer_freq} as written (not used to pick MoE layers, like transformers). */
  public int moeLayerFreq() {
    return moeLayerFreq;
  }

  /** Qwen {@code decoder_sparse_step} (1 for other families). */
  public int decoderSparseStep() {
    return decoderSparseStep;
  }

  /** Qwen {@code mlp_only_layers} (copy). */
  public int[] mlpOnlyLayers() {
    return mlpOnlyLayers.clone();
  }

  /** Whether the router linear has a bias (GPT-OSS). */
  public boolean routerHasBias() {
    return family == Family.GPT_OSS;
  }

  /** Whether the expert linears have biases (GPT-OSS). */
  public boolean expertsHaveBias() {
    return family == Family.GPT_OSS;
  }

  /** Whether the router has a selection-only {@code e_score_correction_bias} (DeepSeek-V3). */
  public boolean hasScoreCorrectionBias() {
    return family == Family.DEEPSEEK_V3;
  }

  /** GPT-OSS SwiGLU clamp limit ({@code swiglu_limit}, 7.0); NaN for other families. */
  public double swigluLimit() {
    return family == Family.GPT_OSS ? swigluLimit : Double.NaN;
  }

  /** GPT-OSS SwiGLU alpha (1.702, hard-coded in transformers); NaN for other families. */
  public double swigluAlpha() {
    return family == Family.GPT_OSS ? GPT_OSS_SWIGLU_ALPHA : Double.NaN;
  }

  public Quantization quantization() {
    return quantization;
  }

  @Override
  public String toString() {
    return "MoeConfig[" + family.modelType + ", H=" + hiddenSize + ", E=" + numExperts + ", k=" + topK + ", I="
        + expertIntermediateSize + ", layers=" + numHiddenLayers + ", " + routingKind()
        + (numSharedExperts > 0 ? ", shared I=" + sharedExpertIntermediateSize() : "") + ", quant=" + quantization + "]";
  }
}
