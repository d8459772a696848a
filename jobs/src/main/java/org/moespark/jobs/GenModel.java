package org.moespark.jobs;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import org.moespark.model.DType;
import org.moespark.model.Json;
import org.moespark.model.MoeConfig;
import org.moespark.model.MoeConfig.Family;
import org.moespark.model.SafeTensorsWriter;

/**
 * {@code moe gen model}: a tiny random MoE checkpoint in Hugging Face layout — {@code config.json}
 * with the family's real keys ({@link MoeConfig#toMap()} plus {@code dtype}) and one
 * {@code model.safetensors} holding the MoE block of every decoder layer under the hub tensor names
 * (models-and-formats.md §2.1–2.6): per-expert 2-D {@code gate/up/down} tensors (Layout A; Mixtral's
 * {@code block_sparse_moe.experts.e.w1/w3/w2}), Qwen2-MoE's gated shared expert, DeepSeek-V3's
 * {@code e_score_correction_bias} (always F32, as released) and ungated shared experts, and GPT-OSS's
 * fused, transposed, interleaved {@code gate_up_proj [E, H, 2I]} / {@code down_proj [E, I, H]} with
 * biases and a router bias. Attention, norms and embeddings are not written: only what
 * {@code MoeLayer.load} reads. Every layer is a MoE layer (DeepSeek {@code first_k_dense_replace = 0},
 * Qwen {@code decoder_sparse_step = 1}).
 *
 * <p>Expert weights are N(0, 1/fan_in); router rows N(0, 4/H), so unit-variance embeddings give router
 * logits of standard deviation 2 (routing clearly preferring some experts, as trained routers do, without
 * being one-hot); biases N(0, 0.1²). Each tensor has its own
 * stream seeded from ({@code seed}, tensor name), so a tensor's values do not depend on which other
 * tensors exist (changing {@code --layers} keeps layer 0 identical).
 */
final class GenModel {
  private GenModel() {}

  /** What to generate. */
  record Spec(Family family, int hidden, int experts, int topK, int intermediate, int sharedIntermediate,
      int layers, int groups, int topkGroup, DType dtype, long seed) {
    Spec {
      if (family == null) {
        throw new IllegalArgumentException("family must not be null");
      }
      if (dtype != DType.F32 && dtype != DType.BF16) {
        throw new IllegalArgumentException("dtype must be F32 or BF16, got " + dtype);
      }
    }
  }

  /** Family defaults: E=8, K=2 (OLMoE and DeepSeek-V3: E=16, K=4, as their tiny reference cases). */
  static Spec defaults(Family family) {
    boolean big = family == Family.OLMOE || family == Family.DEEPSEEK_V3;
    int e = big ? 16 : 8;
    int k = big ? 4 : 2;
    return new Spec(family, 64, e, k, 32, family == Family.QWEN2_MOE ? 64 : 0, 1,
        family == Family.DEEPSEEK_V3 ? 4 : 0, family == Family.DEEPSEEK_V3 ? 2 : 0, DType.F32, 0);
  }

  static int run(String[] argv, PrintStream out) throws IOException {
    Args a = new Args("gen model", argv,
        Set.of("family", "output", "hidden", "experts", "top-k", "intermediate", "shared-intermediate", "layers",
            "groups", "topk-group", "dtype", "seed"),
        Set.of("overwrite"));
    if (!a.positional().isEmpty()) {
      throw new Main.UsageException("unexpected arguments: " + String.join(" ", a.positional()));
    }
    a.required("family");
    String fam = a.choice("family", null, "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss");
    Family family = Family.fromModelType(fam);
    Spec d = defaults(family);
    int experts = a.intValue("experts", d.experts(), 1, 4096);
    int groupsDefault = family == Family.DEEPSEEK_V3 ? defaultGroups(experts) : 0;
    int groups = a.intValue("groups", groupsDefault, 1, 4096);
    int topK = a.intValue("top-k", Math.min(d.topK(), experts), 1, experts);
    int topkGroupDefault = family == Family.DEEPSEEK_V3 ? defaultTopkGroup(experts, groups, topK) : 0;
    int intermediate = a.intValue("intermediate", d.intermediate(), 1, 1 << 16);
    Spec s = new Spec(family,
        a.intValue("hidden", d.hidden(), 1, 1 << 16),
        experts,
        topK,
        intermediate,
        a.intValue("shared-intermediate", family == Family.QWEN2_MOE ? 2 * intermediate : 0, 0, 1 << 16),
        a.intValue("layers", d.layers(), 1, 1024),
        groups,
        a.intValue("topk-group", topkGroupDefault, 1, 4096),
        a.choice("dtype", "f32", "f32", "bf16").equals("bf16") ? DType.BF16 : DType.F32,
        a.longValue("seed", 0, Long.MIN_VALUE, Long.MAX_VALUE));
    if (family != Family.DEEPSEEK_V3 && (a.has("groups") || a.has("topk-group"))) {
      throw new Main.UsageException("--groups/--topk-group apply to deepseek_v3 only, not " + fam);
    }
    if (family != Family.QWEN2_MOE && a.has("shared-intermediate")) {
      throw new Main.UsageException("--shared-intermediate applies to qwen2_moe only (deepseek_v3's shared expert"
          + " has width --intermediate), not " + fam);
    }
    Path dir = Path.of(a.required("output"));
    MoeConfig cfg;
    try {
      cfg = config(s);
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException("inconsistent model options: " + e.getMessage());
    }
    if (Files.exists(dir.resolve("config.json")) || Files.exists(dir.resolve("model.safetensors"))) {
      if (!a.flag("overwrite")) {
        throw new Main.UsageException("output " + dir + " already holds a model (config.json/model.safetensors);"
            + " pass --overwrite to replace it");
      }
    }
    long t0 = System.nanoTime();
    long bytes = write(s, cfg, dir);
    out.printf(Locale.ROOT, "gen model: %s  H=%d E=%d K=%d I=%d layers=%d %s seed %d -> %s  [%.1f MB, %.1f s]%n",
        fam, s.hidden(), s.experts(), s.topK(), s.intermediate(), s.layers(),
        s.dtype() == DType.BF16 ? "bf16" : "f32", s.seed(), dir, bytes / 1e6, (System.nanoTime() - t0) / 1e9);
    return 0;
  }

  /** DeepSeek-V3 groups for E experts: the most of 8, 4, 2, 1 that leaves groups of at least 2 experts. */
  static int defaultGroups(int experts) {
    for (int g : new int[] {8, 4, 2}) {
      if (experts % g == 0 && experts / g >= 2) {
        return g;
      }
    }
    return 1;
  }

  /** Half the groups (as V3's 4 of 8), raised until K experts fit in the kept groups. */
  static int defaultTopkGroup(int experts, int groups, int topK) {
    if (groups <= 0 || experts % groups != 0) {
      return 1;
    }
    int tg = Math.max(1, groups / 2);
    while (tg < groups && (long) tg * (experts / groups) < topK) {
      tg++;
    }
    return tg;
  }

  /** The config of {@code s} (validated by {@link MoeConfig.Builder#build()}). */
  static MoeConfig config(Spec s) {
    MoeConfig.Builder b = MoeConfig.builder(s.family())
        .hiddenSize(s.hidden())
        .numExperts(s.experts())
        .topK(s.topK())
        .expertIntermediateSize(s.intermediate())
        .numHiddenLayers(s.layers());
    switch (s.family()) {
      case QWEN2_MOE:
        b.sharedExpertIntermediateSize(s.sharedIntermediate()).decoderSparseStep(1);
        break;
      case QWEN3_MOE:
        b.normTopkProb(true).decoderSparseStep(1); // released Qwen3-MoE configs renormalise
        break;
      case DEEPSEEK_V3:
        b.nGroup(s.groups()).topkGroup(s.topkGroup()).firstKDenseReplace(0).numSharedExperts(1);
        break;
      default:
        break;
    }
    return b.build();
  }

  /** Writes {@code config.json} and {@code model.safetensors} into {@code dir}; returns the safetensors size. */
  static long write(Spec s, MoeConfig cfg, Path dir) throws IOException {
    Files.createDirectories(dir);
    Map<String, Object> m = cfg.toMap();
    m.put("dtype", s.dtype() == DType.BF16 ? "bfloat16" : "float32");
    Files.write(dir.resolve("config.json"), (Json.writePretty(m) + "\n").getBytes(StandardCharsets.UTF_8));
    SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
    for (TensorSpec t : tensors(s)) {
      DType dt = t.alwaysF32() ? DType.F32 : s.dtype();
      w.addFloats(t.name(), dt, t.shape(), values(s.seed(), t));
    }
    Path file = dir.resolve("model.safetensors");
    w.write(file);
    return Files.size(file);
  }

  /**
   * One tensor to generate.
   *
   * @param std standard deviation of its N(0, std²) values
   * @param alwaysF32 kept F32 in a bf16 checkpoint (DeepSeek's correction bias)
   */
  record TensorSpec(String name, long[] shape, double std, boolean alwaysF32) {}

  /** The tensors of {@code s}, in layer order, with hub names and shapes (§2). */
  static List<TensorSpec> tensors(Spec s) {
    List<TensorSpec> out = new ArrayList<>();
    long h = s.hidden();
    long e = s.experts();
    long i = s.intermediate();
    double wh = 1 / Math.sqrt(h);
    double wi = 1 / Math.sqrt(i);
    double router = 2 / Math.sqrt(h);
    for (int l = 0; l < s.layers(); l++) {
      String p = "model.layers." + l + ".";
      switch (s.family()) {
        case MIXTRAL:
          out.add(new TensorSpec(p + "block_sparse_moe.gate.weight", new long[] {e, h}, router, false));
          for (int x = 0; x < e; x++) {
            String q = p + "block_sparse_moe.experts." + x + ".";
            out.add(new TensorSpec(q + "w1.weight", new long[] {i, h}, wh, false));
            out.add(new TensorSpec(q + "w2.weight", new long[] {h, i}, wi, false));
            out.add(new TensorSpec(q + "w3.weight", new long[] {i, h}, wh, false));
          }
          break;
        case QWEN2_MOE:
        case QWEN3_MOE:
        case OLMOE:
        case DEEPSEEK_V3:
          out.add(new TensorSpec(p + "mlp.gate.weight", new long[] {e, h}, router, false));
          if (s.family() == Family.DEEPSEEK_V3) {
            out.add(new TensorSpec(p + "mlp.gate.e_score_correction_bias", new long[] {e}, 0.1, true));
          }
          for (int x = 0; x < e; x++) {
            swiglu(out, p + "mlp.experts." + x + ".", h, i);
          }
          if (s.family() == Family.QWEN2_MOE) {
            swiglu(out, p + "mlp.shared_expert.", h, s.sharedIntermediate());
            out.add(new TensorSpec(p + "mlp.shared_expert_gate.weight", new long[] {1, h}, wh, false));
          } else if (s.family() == Family.DEEPSEEK_V3) {
            swiglu(out, p + "mlp.shared_experts.", h, i); // n_shared_experts = 1
          }
          break;
        case GPT_OSS:
          out.add(new TensorSpec(p + "mlp.router.weight", new long[] {e, h}, router, false));
          out.add(new TensorSpec(p + "mlp.router.bias", new long[] {e}, 0.1, false));
          out.add(new TensorSpec(p + "mlp.experts.gate_up_proj", new long[] {e, h, 2 * i}, wh, false));
          out.add(new TensorSpec(p + "mlp.experts.gate_up_proj_bias", new long[] {e, 2 * i}, 0.1, false));
          out.add(new TensorSpec(p + "mlp.experts.down_proj", new long[] {e, i, h}, wi, false));
          out.add(new TensorSpec(p + "mlp.experts.down_proj_bias", new long[] {e, h}, 0.1, false));
          break;
        default:
          throw new IllegalStateException("unhandled family " + s.family());
      }
    }
    return out;
  }

  private static void swiglu(List<TensorSpec> out, String prefix, long h, long i) {
    out.add(new TensorSpec(prefix + "gate_proj.weight", new long[] {i, h}, 1 / Math.sqrt(h), false));
    out.add(new TensorSpec(prefix + "up_proj.weight", new long[] {i, h}, 1 / Math.sqrt(h), false));
    out.add(new TensorSpec(prefix + "down_proj.weight", new long[] {h, i}, 1 / Math.sqrt(i), false));
  }

  /** The values of one tensor: a stream seeded from (seed, name), independent of the other tensors. */
  static float[] values(long seed, TensorSpec t) {
    long n = 1;
    for (long d : t.shape()) {
      n = Math.multiplyExact(n, d);
    }
    if (n > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("tensor " + t.name() + " has " + n + " elements, too many for gen model");
    }
    long nameHash = 0xcbf29ce484222325L; // FNV-1a over the UTF-8 name
    for (byte b : t.name().getBytes(StandardCharsets.UTF_8)) {
      nameHash = (nameHash ^ (b & 0xff)) * 0x100000001b3L;
    }
    SplittableRandom r = new SplittableRandom(EmbeddingGenerator.mix64(seed ^ EmbeddingGenerator.mix64(nameHash)));
    float[] v = new float[(int) n];
    for (int k = 0; k < v.length; k++) {
      v[k] = (float) (r.nextGaussian() * t.std());
    }
    return v;
  }
}
