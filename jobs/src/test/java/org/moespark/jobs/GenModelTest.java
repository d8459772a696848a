package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.model.DType;
import org.moespark.model.Json;
import org.moespark.model.MoeConfig;
import org.moespark.model.SafeTensors;
import org.moespark.model.Tensor;
import org.moespark.testing.Tolerance;

class GenModelTest {
  private static final int H = 8;
  private static final int I = 6;
  private static final int T = 23;

  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  @TempDir Path tmp;

  private int run(String... args) {
    return Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private Path gen(String family, String dtype, String... extra) {
    Path dir = tmp.resolve(family + "-" + dtype);
    List<String> a = new ArrayList<>(List.of("gen", "model", "--family", family, "--output", dir.toString(),
        "--hidden", "" + H, "--intermediate", "" + I, "--experts", "4", "--top-k", "2", "--layers", "2",
        "--dtype", dtype, "--seed", "11"));
    a.addAll(List.of(extra));
    assertEquals(0, run(a.toArray(new String[0])), err.toString());
    return dir;
  }

  /** Hub names and shapes of layer L, written out from models-and-formats.md §2 (E = 4). */
  private static Map<String, List<Long>> expectedTensors(String family, int layer) {
    Map<String, List<Long>> m = new TreeMap<>();
    String p = "model.layers." + layer + ".";
    long h = H;
    long i = I;
    switch (family) {
      case "mixtral":
        m.put(p + "block_sparse_moe.gate.weight", List.of(4L, h));
        for (int e = 0; e < 4; e++) {
          m.put(p + "block_sparse_moe.experts." + e + ".w1.weight", List.of(i, h));
          m.put(p + "block_sparse_moe.experts." + e + ".w3.weight", List.of(i, h));
          m.put(p + "block_sparse_moe.experts." + e + ".w2.weight", List.of(h, i));
        }
        break;
      case "gpt_oss":
        m.put(p + "mlp.router.weight", List.of(4L, h));
        m.put(p + "mlp.router.bias", List.of(4L));
        m.put(p + "mlp.experts.gate_up_proj", List.of(4L, h, 2 * i));
        m.put(p + "mlp.experts.gate_up_proj_bias", List.of(4L, 2 * i));
        m.put(p + "mlp.experts.down_proj", List.of(4L, i, h));
        m.put(p + "mlp.experts.down_proj_bias", List.of(4L, h));
        break;
      default:
        m.put(p + "mlp.gate.weight", List.of(4L, h));
        for (int e = 0; e < 4; e++) {
          m.put(p + "mlp.experts." + e + ".gate_proj.weight", List.of(i, h));
          m.put(p + "mlp.experts." + e + ".up_proj.weight", List.of(i, h));
          m.put(p + "mlp.experts." + e + ".down_proj.weight", List.of(h, i));
        }
        if (family.equals("qwen2_moe")) {
          m.put(p + "mlp.shared_expert.gate_proj.weight", List.of(2 * i, h));
          m.put(p + "mlp.shared_expert.up_proj.weight", List.of(2 * i, h));
          m.put(p + "mlp.shared_expert.down_proj.weight", List.of(h, 2 * i));
          m.put(p + "mlp.shared_expert_gate.weight", List.of(1L, h));
        }
        if (family.equals("deepseek_v3")) {
          m.put(p + "mlp.gate.e_score_correction_bias", List.of(4L));
          m.put(p + "mlp.shared_experts.gate_proj.weight", List.of(i, h));
          m.put(p + "mlp.shared_experts.up_proj.weight", List.of(i, h));
          m.put(p + "mlp.shared_experts.down_proj.weight", List.of(h, i));
        }
        break;
    }
    return m;
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss"})
  void everyFamilyHasHubNamesAndLoadsAndRuns(String family) throws Exception {
    for (String dtype : List.of("f32", "bf16")) {
      Path dir = gen(family, dtype);
      // config.json: the family's real keys
      @SuppressWarnings("unchecked")
      Map<String, Object> cfg = (Map<String, Object>) Json.parse(Files.readAllBytes(dir.resolve("config.json")));
      assertEquals(family, cfg.get("model_type"));
      assertEquals(dtype.equals("bf16") ? "bfloat16" : "float32", cfg.get("dtype"));
      String expertsKey = switch (family) {
        case "mixtral", "gpt_oss" -> "num_local_experts";
        case "deepseek_v3" -> "n_routed_experts";
        default -> "num_experts";
      };
      String widthKey = switch (family) {
        case "qwen2_moe", "qwen3_moe", "deepseek_v3" -> "moe_intermediate_size";
        default -> "intermediate_size";
      };
      assertEquals(4L, ((Number) cfg.get(expertsKey)).longValue(), expertsKey + " in " + cfg);
      assertEquals((long) I, ((Number) cfg.get(widthKey)).longValue(), widthKey + " in " + cfg);
      assertEquals(2L, ((Number) cfg.get("num_experts_per_tok")).longValue());
      assertEquals((long) H, ((Number) cfg.get("hidden_size")).longValue());
      assertEquals(2L, ((Number) cfg.get("num_hidden_layers")).longValue());
      if (family.equals("deepseek_v3")) {
        assertEquals(0L, ((Number) cfg.get("first_k_dense_replace")).longValue());
        assertEquals(2L, ((Number) cfg.get("n_group")).longValue());
      }
      if (family.equals("qwen3_moe")) {
        assertEquals(Boolean.TRUE, cfg.get("norm_topk_prob"));
      }
      MoeConfig parsed = MoeConfig.load(dir);
      assertEquals(family, parsed.modelType());

      // model.safetensors: exactly the hub tensors of both layers, in the requested dtype
      Map<String, List<Long>> expected = new TreeMap<>(expectedTensors(family, 0));
      expected.putAll(expectedTensors(family, 1));
      Map<String, List<Long>> got = new TreeMap<>();
      try (SafeTensors st = SafeTensors.open(dir.resolve("model.safetensors"))) {
        assertEquals(Map.of("format", "pt"), st.metadata());
        for (Tensor t : st.tensors()) {
          got.put(t.name(), Arrays.stream(t.shape()).boxed().toList());
          DType want = t.name().endsWith("e_score_correction_bias") || dtype.equals("f32") ? DType.F32 : DType.BF16;
          assertEquals(want, t.dtype(), t.name());
        }
      }
      assertEquals(expected, got, family + " " + dtype + " tensors");

      // both layers load and run
      for (int layer = 0; layer < 2; layer++) {
        try (MoeLayer m = MoeLayer.load(dir, layer, LayerOptions.defaults())) {
          assertEquals(H, m.hiddenSize());
          assertEquals(4, m.numExperts());
          assertEquals(2, m.topK());
          MoeLayer.Output o = m.forward(input(T, 3), T);
          assertEquals(T * H, o.y().length);
          for (float v : o.y()) {
            assertTrue(Float.isFinite(v), family + " output not finite");
          }
          for (int t = 0; t < T; t++) {
            int a = o.topkIds()[2 * t];
            int b = o.topkIds()[2 * t + 1];
            assertTrue(a >= 0 && a < 4 && b >= 0 && b < 4 && a != b, "token " + t + " ids " + a + "," + b);
          }
        }
      }
    }
  }

  @Test
  void mixtralForwardMatchesNaiveReference() throws Exception {
    Path dir = gen("mixtral", "f32");
    float[] x = input(T, 5);
    try (SafeTensors st = SafeTensors.open(dir.resolve("model.safetensors"));
        MoeLayer m = MoeLayer.load(dir, 1, LayerOptions.defaults())) {
      String p = "model.layers.1.block_sparse_moe.";
      float[] wg = st.tensor(p + "gate.weight").toFloatArray();
      float[] y = new float[T * H];
      int[] ids = new int[T * 2];
      for (int t = 0; t < T; t++) {
        double[] logit = new double[4];
        for (int e = 0; e < 4; e++) {
          for (int k = 0; k < H; k++) {
            logit[e] += (double) wg[e * H + k] * x[t * H + k];
          }
        }
        double mx = Arrays.stream(logit).max().getAsDouble();
        double[] pr = new double[4];
        for (int e = 0; e < 4; e++) {
          pr[e] = Math.exp(logit[e] - mx);
        }
        int e0 = argmax(pr, -1);
        int e1 = argmax(pr, e0);
        ids[2 * t] = e0;
        ids[2 * t + 1] = e1;
        double w0 = pr[e0] / (pr[e0] + pr[e1]);
        double w1 = pr[e1] / (pr[e0] + pr[e1]);
        for (int j = 0; j < 2; j++) {
          int e = j == 0 ? e0 : e1;
          double w = j == 0 ? w0 : w1;
          float[] g = st.tensor(p + "experts." + e + ".w1.weight").toFloatArray();
          float[] u = st.tensor(p + "experts." + e + ".w3.weight").toFloatArray();
          float[] d = st.tensor(p + "experts." + e + ".w2.weight").toFloatArray();
          double[] act = new double[I];
          for (int r = 0; r < I; r++) {
            double gs = 0;
            double us = 0;
            for (int k = 0; k < H; k++) {
              gs += (double) g[r * H + k] * x[t * H + k];
              us += (double) u[r * H + k] * x[t * H + k];
            }
            act[r] = gs / (1 + Math.exp(-gs)) * us;
          }
          for (int c = 0; c < H; c++) {
            double s = 0;
            for (int r = 0; r < I; r++) {
              s += (double) d[c * I + r] * act[r];
            }
            y[t * H + c] += (float) (w * s);
          }
        }
      }
      MoeLayer.Output o = m.forward(x, T);
      assertArrayEquals(ids, o.topkIds(), "mixtral routing");
      Tolerance.FP32.assertClose(o.y(), y, "mixtral output vs naive reference");
    }
  }

  @Test
  void gptOssForwardMatchesNaiveReference() throws Exception {
    Path dir = gen("gpt_oss", "f32");
    float[] x = input(T, 6);
    try (SafeTensors st = SafeTensors.open(dir.resolve("model.safetensors"));
        MoeLayer m = MoeLayer.load(dir, 0, LayerOptions.defaults())) {
      String p = "model.layers.0.mlp.";
      float[] wr = st.tensor(p + "router.weight").toFloatArray();
      float[] br = st.tensor(p + "router.bias").toFloatArray();
      float[] gu = st.tensor(p + "experts.gate_up_proj").toFloatArray(); // [E, H, 2I]
      float[] gub = st.tensor(p + "experts.gate_up_proj_bias").toFloatArray(); // [E, 2I]
      float[] dn = st.tensor(p + "experts.down_proj").toFloatArray(); // [E, I, H]
      float[] dnb = st.tensor(p + "experts.down_proj_bias").toFloatArray(); // [E, H]
      float[] y = new float[T * H];
      int[] ids = new int[T * 2];
      for (int t = 0; t < T; t++) {
        double[] logit = new double[4];
        for (int e = 0; e < 4; e++) {
          logit[e] = br[e];
          for (int k = 0; k < H; k++) {
            logit[e] += (double) wr[e * H + k] * x[t * H + k];
          }
        }
        int e0 = argmax(logit, -1);
        int e1 = argmax(logit, e0);
        ids[2 * t] = e0;
        ids[2 * t + 1] = e1;
        double z = Math.exp(logit[e1] - logit[e0]);
        double[] w = {1 / (1 + z), z / (1 + z)};
        for (int j = 0; j < 2; j++) {
          int e = j == 0 ? e0 : e1;
          double[] a = new double[I];
          for (int r = 0; r < I; r++) {
            double g = gub[e * 2 * I + 2 * r];
            double u = gub[e * 2 * I + 2 * r + 1];
            for (int k = 0; k < H; k++) {
              g += (double) x[t * H + k] * gu[(e * H + k) * 2 * I + 2 * r];
              u += (double) x[t * H + k] * gu[(e * H + k) * 2 * I + 2 * r + 1];
            }
            g = Math.min(g, 7.0);
            u = Math.max(-7.0, Math.min(7.0, u));
            a[r] = (u + 1) * g / (1 + Math.exp(-1.702 * g));
          }
          for (int c = 0; c < H; c++) {
            double s = dnb[e * H + c];
            for (int r = 0; r < I; r++) {
              s += a[r] * dn[(e * I + r) * H + c];
            }
            y[t * H + c] += (float) (w[j] * s);
          }
        }
      }
      MoeLayer.Output o = m.forward(x, T);
      assertArrayEquals(ids, o.topkIds(), "gpt_oss routing");
      Tolerance.FP32.assertClose(o.y(), y, "gpt_oss output vs naive reference");
    }
  }

  @Test
  void deterministicPerSeedAndLayerZeroIndependentOfLayerCount() throws Exception {
    Path a = gen("olmoe", "f32");
    byte[] first = Files.readAllBytes(a.resolve("model.safetensors"));
    assertEquals(0, run("gen", "model", "--family", "olmoe", "--output", a.toString(), "--hidden", "" + H,
        "--intermediate", "" + I, "--experts", "4", "--top-k", "2", "--layers", "2", "--seed", "11", "--overwrite"),
        err.toString());
    assertArrayEquals(first, Files.readAllBytes(a.resolve("model.safetensors")), "same seed, same bytes");

    Path one = tmp.resolve("one");
    Path other = tmp.resolve("other");
    assertEquals(0, run("gen", "model", "--family", "olmoe", "--output", one.toString(), "--hidden", "" + H,
        "--intermediate", "" + I, "--experts", "4", "--top-k", "2", "--layers", "1", "--seed", "11"), err.toString());
    assertEquals(0, run("gen", "model", "--family", "olmoe", "--output", other.toString(), "--hidden", "" + H,
        "--intermediate", "" + I, "--experts", "4", "--top-k", "2", "--layers", "1", "--seed", "12"), err.toString());
    try (SafeTensors two = SafeTensors.open(a.resolve("model.safetensors"));
        SafeTensors o1 = SafeTensors.open(one.resolve("model.safetensors"));
        SafeTensors o2 = SafeTensors.open(other.resolve("model.safetensors"))) {
      String n = "model.layers.0.mlp.experts.3.down_proj.weight";
      Tolerance.assertBitEqual(o1.tensor(n).toFloatArray(), two.tensor(n).toFloatArray(), n);
      assertFalse(Arrays.equals(o1.tensor(n).toFloatArray(), o2.tensor(n).toFloatArray()), "seed 12 differs from 11");
    }
  }

  @Test
  void usageErrorsNameTheOption() {
    assertEquals(2, run("gen", "model", "--output", tmp.resolve("x").toString()));
    assertTrue(err.toString().contains("--family"), err.toString());
    err.reset();
    assertEquals(2, run("gen", "model", "--family", "llama", "--output", tmp.resolve("x").toString()));
    assertTrue(err.toString().contains("got 'llama'"), err.toString());
    err.reset();
    assertEquals(2, run("gen", "model", "--family", "mixtral", "--output", tmp.resolve("x").toString(),
        "--experts", "4", "--top-k", "5"));
    assertTrue(err.toString().contains("--top-k") && err.toString().contains("got 5"), err.toString());
    err.reset();
    assertEquals(2, run("gen", "model", "--family", "deepseek_v3", "--output", tmp.resolve("x").toString(),
        "--experts", "8", "--groups", "3"));
    assertTrue(err.toString().contains("n_group 3"), err.toString());
    err.reset();
    gen("qwen3_moe", "f32");
    assertEquals(2, run("gen", "model", "--family", "qwen3_moe", "--output", tmp.resolve("qwen3_moe-f32").toString()));
    assertTrue(err.toString().contains("--overwrite"), err.toString());
  }

  private static int argmax(double[] v, int skip) {
    int best = -1;
    for (int i = 0; i < v.length; i++) {
      if (i != skip && (best < 0 || v[i] > v[best])) {
        best = i;
      }
    }
    return best;
  }

  private static float[] input(int tokens, long seed) {
    SplittableRandom r = new SplittableRandom(seed);
    float[] x = new float[tokens * H];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) r.nextGaussian();
    }
    return x;
  }
}
