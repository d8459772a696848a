package org.moespark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.moespark.model.MoeConfig.Family;
import org.moespark.model.MoeConfig.QuantMethod;
import org.moespark.model.MoeConfig.RoutingKind;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MoeConfigTest {
  @TempDir
  Path dir;

  // Fixtures use the key names of the released configs (models-and-formats.md §2), plus noise keys.
  static final String MIXTRAL = "{\"architectures\": [\"MixtralForCausalLM\"], \"model_type\": \"mixtral\","
      + " \"hidden_size\": 4096, \"intermediate_size\": 14336, \"num_local_experts\": 8, \"num_experts_per_tok\": 2,"
      + " \"num_hidden_layers\": 32, \"hidden_act\": \"silu\", \"router_jitter_noise\": 0.0, \"rms_norm_eps\": 1e-05,"
      + " \"rope_theta\": 1000000.0, \"torch_dtype\": \"bfloat16\", \"sliding_window\": null}";
  static final String QWEN2 = "{\"model_type\": \"qwen2_moe\", \"hidden_size\": 2048, \"intermediate_size\": 5632,"
      + " \"moe_intermediate_size\": 1408, \"shared_expert_intermediate_size\": 5632, \"num_experts\": 60,"
      + " \"num_experts_per_tok\": 4, \"norm_topk_prob\": false, \"decoder_sparse_step\": 1, \"mlp_only_layers\": [],"
      + " \"num_hidden_layers\": 24, \"hidden_act\": \"silu\"}";
  static final String QWEN3 = "{\"model_type\": \"qwen3_moe\", \"hidden_size\": 2048, \"intermediate_size\": 6144,"
      + " \"moe_intermediate_size\": 768, \"num_experts\": 128, \"num_experts_per_tok\": 8, \"norm_topk_prob\": true,"
      + " \"decoder_sparse_step\": 1, \"mlp_only_layers\": [], \"num_hidden_layers\": 48, \"hidden_act\": \"silu\","
      + " \"head_dim\": 128}";
  static final String OLMOE = "{\"model_type\": \"olmoe\", \"hidden_size\": 2048, \"intermediate_size\": 1024,"
      + " \"num_experts\": 64, \"num_experts_per_tok\": 8, \"norm_topk_prob\": false, \"num_hidden_layers\": 16,"
      + " \"hidden_act\": \"silu\", \"vocab_size\": 50304}";
  static final String DEEPSEEK = "{\"model_type\": \"deepseek_v3\", \"hidden_size\": 7168, \"intermediate_size\": 18432,"
      + " \"moe_intermediate_size\": 2048, \"n_routed_experts\": 256, \"n_shared_experts\": 1, \"num_experts_per_tok\": 8,"
      + " \"n_group\": 8, \"topk_group\": 4, \"routed_scaling_factor\": 2.5, \"norm_topk_prob\": true,"
      + " \"first_k_dense_replace\": 3, \"moe_layer_freq\": 1, \"scoring_func\": \"sigmoid\", \"topk_method\": \"noaux_tc\","
      + " \"num_hidden_layers\": 61, \"num_nextn_predict_layers\": 1, \"hidden_act\": \"silu\","
      + " \"quantization_config\": {\"activation_scheme\": \"dynamic\", \"fmt\": \"e4m3\", \"quant_method\": \"fp8\","
      + " \"weight_block_size\": [128, 128]}}";
  static final String GPT_OSS = "{\"model_type\": \"gpt_oss\", \"hidden_size\": 2880, \"intermediate_size\": 2880,"
      + " \"num_local_experts\": 32, \"num_experts_per_tok\": 4, \"num_hidden_layers\": 24, \"swiglu_limit\": 7.0,"
      + " \"hidden_act\": \"silu\", \"experts_per_token\": 4, \"quantization_config\": {\"modules_to_not_convert\":"
      + " [\"model.layers.*.self_attn\", \"model.layers.*.mlp.router\", \"model.embed_tokens\", \"lm_head\"],"
      + " \"quant_method\": \"mxfp4\"}}";

  private static MoeConfig parse(String json) {
    return MoeConfig.parse(json, "test-config.json");
  }

  private static IllegalArgumentException rejects(String json, String... fragments) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> parse(json));
    assertTrue(e.getMessage().contains("test-config.json"), "names the file: " + e.getMessage());
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
    }
    return e;
  }

  @Test
  void mixtral() {
    MoeConfig c = parse(MIXTRAL);
    assertEquals(Family.MIXTRAL, c.family());
    assertEquals(4096, c.hiddenSize());
    assertEquals(8, c.numExperts());
    assertEquals(2, c.topK());
    assertEquals(14336, c.expertIntermediateSize());
    assertEquals(32, c.numHiddenLayers());
    assertTrue(c.normTopkProb(), "Mixtral always renormalises");
    assertEquals(RoutingKind.SOFTMAX_TOPK, c.routingKind());
    assertEquals(0, c.numSharedExperts());
    assertEquals(0, c.sharedExpertIntermediateSize());
    assertFalse(c.routerHasBias());
    assertEquals(QuantMethod.NONE, c.quantization().method());
    assertTrue(c.isMoeLayer(0) && c.isMoeLayer(31));
    assertEquals(1e-05, c.raw().get("rms_norm_eps"), "unknown keys kept in raw()");
    // the mixtral router has no norm flag: a stray norm_topk_prob=false is ignored, as in transformers
    assertTrue(parse(MIXTRAL.replace("\"silu\"", "\"silu\", \"norm_topk_prob\": false")).normTopkProb());
  }

  @Test
  void qwen2MoeWithSharedExpert() {
    MoeConfig c = parse(QWEN2);
    assertEquals(Family.QWEN2_MOE, c.family());
    assertEquals(60, c.numExperts());
    assertEquals(4, c.topK());
    assertEquals(1408, c.expertIntermediateSize());
    assertEquals(5632, c.denseIntermediateSize());
    assertEquals(1, c.numSharedExperts());
    assertEquals(5632, c.sharedExpertIntermediateSize());
    assertTrue(c.sharedExpertGated());
    assertFalse(c.normTopkProb());
    assertEquals(RoutingKind.SOFTMAX_TOPK, c.routingKind());
    rejects(QWEN2.replace("\"shared_expert_intermediate_size\": 5632,", ""), "'shared_expert_intermediate_size'");
    // default norm_topk_prob is false
    assertFalse(parse(QWEN2.replace("\"norm_topk_prob\": false,", "")).normTopkProb());
  }

  @Test
  void qwen3MoeAcceptsBothExpertKeys() {
    MoeConfig c = parse(QWEN3);
    assertEquals(128, c.numExperts());
    assertEquals(768, c.expertIntermediateSize());
    assertTrue(c.normTopkProb());
    assertEquals(0, c.numSharedExperts());
    assertFalse(c.sharedExpertGated());
    // transformers 5.17 writes num_local_experts for qwen3_moe
    assertEquals(128, parse(QWEN3.replace("\"num_experts\"", "\"num_local_experts\"")).numExperts());
    assertEquals(128, parse(QWEN3.replace("\"num_experts\": 128,", "\"num_experts\": 128, \"num_local_experts\": 128,"))
        .numExperts());
    rejects(QWEN3.replace("\"num_experts\": 128,", "\"num_experts\": 128, \"num_local_experts\": 64,"),
        "'num_experts' = 128", "'num_local_experts' = 64", "disagree");
    rejects(QWEN3.replace("\"num_experts\": 128,", ""), "missing required key 'num_experts'", "num_local_experts");
  }

  @Test
  void olmoeUsesIntermediateSizeAsExpertWidth() {
    MoeConfig c = parse(OLMOE);
    assertEquals(64, c.numExperts());
    assertEquals(8, c.topK());
    assertEquals(1024, c.expertIntermediateSize());
    assertFalse(c.normTopkProb());
    assertEquals(RoutingKind.SOFTMAX_TOPK, c.routingKind());
  }

  @Test
  void deepseekV3() {
    MoeConfig c = parse(DEEPSEEK);
    assertEquals(Family.DEEPSEEK_V3, c.family());
    assertEquals(256, c.numExperts());
    assertEquals(2048, c.expertIntermediateSize());
    assertEquals(8, c.nGroup());
    assertEquals(4, c.topkGroup());
    assertEquals(2.5, c.routedScalingFactor());
    assertTrue(c.normTopkProb());
    assertEquals(1, c.numSharedExperts());
    assertEquals(2048, c.sharedExpertIntermediateSize());
    assertFalse(c.sharedExpertGated());
    assertTrue(c.hasScoreCorrectionBias());
    assertEquals(RoutingKind.SIGMOID_GROUPED, c.routingKind());
    assertEquals(QuantMethod.FP8_BLOCK, c.quantization().method());
    assertEquals(128, c.quantization().blockRows());
    assertEquals(128, c.quantization().blockCols());
    assertFalse(c.isMoeLayer(2));
    assertTrue(c.isMoeLayer(3));
    assertTrue(c.isMoeLayer(60));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.requireMoeLayer(0));
    assertTrue(e.getMessage().startsWith("layer 0 of deepseek_v3 is dense (first_k_dense_replace=3)"), e.getMessage());
    IllegalArgumentException mtp = assertThrows(IllegalArgumentException.class, () -> c.requireMoeLayer(61));
    assertTrue(mtp.getMessage().contains("outside [0, num_hidden_layers=61)"), mtp.getMessage());
    // defaults of DeepseekV3Config when keys are absent
    MoeConfig d = parse("{\"model_type\": \"deepseek_v3\", \"hidden_size\": 64, \"moe_intermediate_size\": 32,"
        + " \"n_routed_experts\": 16, \"num_experts_per_tok\": 4, \"num_hidden_layers\": 4}");
    assertEquals(8, d.nGroup());
    assertEquals(4, d.topkGroup());
    assertEquals(2.5, d.routedScalingFactor());
    assertTrue(d.normTopkProb());
    assertEquals(1, d.numSharedExperts());
    assertEquals(3, d.firstKDenseReplace());
    assertEquals(QuantMethod.NONE, d.quantization().method());
    rejects(DEEPSEEK.replace("\"sigmoid\"", "\"softmax\""), "scoring_func \"softmax\"");
    rejects(DEEPSEEK.replace("\"noaux_tc\"", "\"greedy\""), "topk_method \"greedy\"");
    rejects(DEEPSEEK.replace("\"n_group\": 8", "\"n_group\": 7"), "not divisible by n_group 7");
    rejects(DEEPSEEK.replace("\"topk_group\": 4", "\"topk_group\": 9"), "topk_group must be in [1, n_group=8]");
  }

  @Test
  void gptOss() {
    MoeConfig c = parse(GPT_OSS);
    assertEquals(Family.GPT_OSS, c.family());
    assertEquals(32, c.numExperts());
    assertEquals(4, c.topK());
    assertEquals(2880, c.expertIntermediateSize());
    assertEquals(RoutingKind.TOPK_SOFTMAX, c.routingKind());
    assertTrue(c.routerHasBias() && c.expertsHaveBias());
    assertEquals(7.0, c.swigluLimit());
    assertEquals(1.702, c.swigluAlpha());
    assertEquals(QuantMethod.MXFP4, c.quantization().method());
    assertEquals(32, c.quantization().groupSize());
    assertEquals(List.of("model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"),
        c.quantization().excludedModules());
    assertEquals(7.0, parse(GPT_OSS.replace("\"swiglu_limit\": 7.0,", "")).swigluLimit(), "default limit");
    assertEquals(Double.NaN, parse(MIXTRAL).swigluLimit());
  }

  @Test
  void qwenDenseLayers() {
    MoeConfig c = parse(QWEN2.replace("\"decoder_sparse_step\": 1, \"mlp_only_layers\": []",
        "\"decoder_sparse_step\": 2, \"mlp_only_layers\": [3]"));
    assertFalse(c.isMoeLayer(0), "(0+1) % 2 != 0");
    assertTrue(c.isMoeLayer(1));
    assertFalse(c.isMoeLayer(3), "in mlp_only_layers");
    assertTrue(c.isMoeLayer(5));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.requireMoeLayer(3));
    assertTrue(e.getMessage().startsWith("layer 3 of qwen2_moe is dense (mlp_only_layers=[3])"), e.getMessage());
    IllegalArgumentException e0 = assertThrows(IllegalArgumentException.class, () -> c.requireMoeLayer(0));
    assertTrue(e0.getMessage().contains("decoder_sparse_step=2"), e0.getMessage());
    assertThrows(IllegalArgumentException.class, () -> c.isMoeLayer(-1));
  }

  @Test
  void quantizationConfigs() {
    MoeConfig ue = parse(DEEPSEEK.replace("\"weight_block_size\": [128, 128]",
        "\"weight_block_size\": [16, 32], \"scale_fmt\": \"ue8m0\""));
    assertEquals(16, ue.quantization().blockRows());
    assertEquals(32, ue.quantization().blockCols());
    assertEquals("ue8m0", ue.quantization().scaleFmt());
    MoeConfig dflt = parse(DEEPSEEK.replace(", \"weight_block_size\": [128, 128]", ""));
    assertEquals(128, dflt.quantization().blockRows());
    MoeConfig nv = parse(QWEN3.replace("\"head_dim\": 128", "\"quantization_config\": {\"quant_method\": \"modelopt\","
        + " \"quant_algo\": \"NVFP4\", \"config_groups\": {\"group_0\": {\"weights\": {\"num_bits\": 4, \"type\":"
        + " \"float\", \"group_size\": 16}}}, \"ignore\": [\"lm_head\", \"model.layers.*.mlp.gate\"]}"));
    assertEquals(QuantMethod.NVFP4, nv.quantization().method());
    assertEquals(16, nv.quantization().groupSize());
    assertEquals(List.of("lm_head", "model.layers.*.mlp.gate"), nv.quantization().excludedModules());
    rejects(QWEN3.replace("\"head_dim\": 128", "\"quantization_config\": {\"quant_method\": \"gptq\"}"),
        "quant_method \"gptq\" is not supported");
    rejects(QWEN3.replace("\"head_dim\": 128", "\"quantization_config\": {\"quant_method\": \"modelopt\","
        + " \"quant_algo\": \"FP8\"}"), "quant_algo \"FP8\"");
    rejects(DEEPSEEK.replace("\"e4m3\"", "\"e5m2\""), "fmt \"e5m2\"");
    rejects(DEEPSEEK.replace("[128, 128]", "[128]"), "weight_block_size");
    rejects(QWEN3.replace("\"head_dim\": 128", "\"quantization_config\": {\"quant_method\": \"mxfp4\"}"),
        "mxfp4 is supported for gpt_oss checkpoints only");
  }

  @Test
  void rejectsMissingWrongAndUnsupportedKeys() {
    rejects(MIXTRAL.replace("\"model_type\": \"mixtral\",", ""), "missing required key 'model_type'");
    rejects(MIXTRAL.replace("\"mixtral\"", "\"llama\""), "model_type \"llama\" is not supported", "deepseek_v3");
    rejects(MIXTRAL.replace("\"hidden_size\": 4096,", ""), "missing required key 'hidden_size'");
    rejects(MIXTRAL.replace("\"hidden_size\": 4096", "\"hidden_size\": \"4096\""), "'hidden_size' must be a 32-bit integer");
    rejects(MIXTRAL.replace("\"hidden_size\": 4096", "\"hidden_size\": 4096.0"), "'hidden_size'", "4096.0");
    rejects(MIXTRAL.replace("\"intermediate_size\": 14336,", ""), "missing required key 'intermediate_size'");
    rejects(MIXTRAL.replace("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9"),
        "num_experts_per_tok must be in [1, 8], got 9");
    rejects(MIXTRAL.replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""), "hidden_act must be \"silu\"");
    rejects(QWEN3.replace("\"norm_topk_prob\": true", "\"norm_topk_prob\": 1"), "'norm_topk_prob' must be true or false");
    rejects(QWEN3.replace("\"mlp_only_layers\": []", "\"mlp_only_layers\": [\"a\"]"), "mlp_only_layers[0]");
    rejects(OLMOE.replace("\"num_experts\": 64", "\"num_experts\": 0"), "num_experts must be > 0, got 0");
    rejects("[1]", "must be a JSON object");
    rejects("{\"model_type\": ", "not valid JSON");
  }

  @Test
  void builderToJsonRoundTripsForEveryFamily() throws IOException {
    MoeConfig[] built = {
        MoeConfig.builder(Family.MIXTRAL).hiddenSize(64).numExperts(4).topK(2).expertIntermediateSize(32)
            .numHiddenLayers(2).build(),
        MoeConfig.builder(Family.QWEN2_MOE).hiddenSize(64).numExperts(6).topK(2).expertIntermediateSize(32)
            .sharedExpertIntermediateSize(48).normTopkProb(true).decoderSparseStep(2).mlpOnlyLayers(3)
            .numHiddenLayers(4).build(),
        MoeConfig.builder(Family.QWEN3_MOE).hiddenSize(64).numExperts(8).topK(2).expertIntermediateSize(16).build(),
        MoeConfig.builder(Family.OLMOE).hiddenSize(64).numExperts(8).topK(3).expertIntermediateSize(16).build(),
        MoeConfig.builder(Family.DEEPSEEK_V3).hiddenSize(64).numExperts(16).topK(4).expertIntermediateSize(16)
            .nGroup(4).topkGroup(2).routedScalingFactor(2.5).numSharedExperts(2).firstKDenseReplace(1)
            .numHiddenLayers(3).quantization(MoeConfig.Quantization.fp8Block(16, 16, null)).build(),
        MoeConfig.builder(Family.GPT_OSS).hiddenSize(64).numExperts(4).topK(2).expertIntermediateSize(64)
            .swigluLimit(6.5).quantization(MoeConfig.Quantization.mxfp4(List.of("lm_head"))).build()};
    for (MoeConfig c : built) {
      Path d = Files.createDirectories(dir.resolve(c.modelType()));
      c.write(d);
      MoeConfig back = MoeConfig.load(d);
      String what = c.modelType();
      assertEquals(c.family(), back.family(), what);
      assertEquals(c.hiddenSize(), back.hiddenSize(), what);
      assertEquals(c.numExperts(), back.numExperts(), what);
      assertEquals(c.topK(), back.topK(), what);
      assertEquals(c.expertIntermediateSize(), back.expertIntermediateSize(), what);
      assertEquals(c.numHiddenLayers(), back.numHiddenLayers(), what);
      assertEquals(c.normTopkProb(), back.normTopkProb(), what);
      assertEquals(c.numSharedExperts(), back.numSharedExperts(), what);
      assertEquals(c.sharedExpertIntermediateSize(), back.sharedExpertIntermediateSize(), what);
      assertEquals(c.nGroup(), back.nGroup(), what);
      assertEquals(c.topkGroup(), back.topkGroup(), what);
      assertEquals(c.routedScalingFactor(), back.routedScalingFactor(), what);
      assertEquals(c.firstKDenseReplace(), back.firstKDenseReplace(), what);
      assertEquals(c.decoderSparseStep(), back.decoderSparseStep(), what);
      assertArrayEquals(c.mlpOnlyLayers(), back.mlpOnlyLayers(), what);
      assertEquals(c.swigluLimit(), back.swigluLimit(), what);
      assertEquals(c.quantization().toString(), back.quantization().toString(), what);
      assertEquals(c.toJson(), back.toJson(), what);
    }
    // spot-check the family key names in the written JSON
    assertTrue(built[0].toJson().contains("\"num_local_experts\": 4"), built[0].toJson());
    assertTrue(built[4].toJson().contains("\"n_routed_experts\": 16"), built[4].toJson());
    assertTrue(built[4].toJson().contains("\"weight_block_size\": [\n"), built[4].toJson());
    assertTrue(built[1].toJson().contains("\"moe_intermediate_size\": 32"), built[1].toJson());
    assertArrayEquals(new int[] {3}, built[1].mlpOnlyLayers());
    assertEquals(32, built[4].sharedExpertIntermediateSize(), "16 x 2 shared experts");
  }
}
