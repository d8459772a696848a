package org.moespark.layer;

import java.util.List;

/**
 * A MoE block in memory, weights dequantized to fp32: what {@link MoeLayer#load} builds from a
 * checkpoint and what tests and benchmarks build directly.
 *
 * @param modelType HF {@code model_type} (e.g. {@code mixtral}); informational
 * @param router the router
 * @param experts routed experts, {@code router.experts()} of them, ids in list order
 * @param activation the routed (and shared) experts' gated activation
 * @param shared the shared expert (Qwen2-MoE {@code shared_expert}, DeepSeek-V3 {@code shared_experts}
 *     — its {@code n_shared_experts} experts fused into one wider MLP, as the checkpoint stores them) or null
 * @param sharedGate Qwen2-MoE {@code shared_expert_gate.weight} {@code [H]}: the shared output is scaled
 *     by {@code sigmoid(x·sharedGate)}; null = added ungated (DeepSeek-V3); must be null without shared
 */
public record MoeBlockSpec(
    String modelType, RouterSpec router, List<ExpertWeights> experts, GatedActivation activation,
    ExpertWeights shared, float[] sharedGate) {

  public MoeBlockSpec {
    if (modelType == null) {
      throw new IllegalArgumentException("modelType must not be null");
    }
    if (router == null) {
      throw new IllegalArgumentException("router must not be null");
    }
    if (activation == null) {
      throw new IllegalArgumentException("activation must not be null");
    }
    if (experts == null || experts.size() != router.experts()) {
      throw new IllegalArgumentException("the router has " + router.experts() + " experts but "
          + (experts == null ? "no expert list" : experts.size() + " expert weight sets") + " were given");
    }
    experts = List.copyOf(experts);
    for (int e = 0; e < experts.size(); e++) {
      if (experts.get(e).hidden() != router.hidden()) {
        throw new IllegalArgumentException("expert " + e + " has hidden size " + experts.get(e).hidden()
            + ", the router " + router.hidden());
      }
    }
    if (shared != null && shared.hidden() != router.hidden()) {
      throw new IllegalArgumentException("the shared expert has hidden size " + shared.hidden() + ", the router "
          + router.hidden());
    }
    if (sharedGate != null) {
      if (shared == null) {
        throw new IllegalArgumentException("a shared expert gate needs a shared expert");
      }
      if (sharedGate.length != router.hidden()) {
        throw new IllegalArgumentException("shared expert gate must be [1, " + router.hidden() + "], got "
            + sharedGate.length + " floats");
      }
    }
  }
}
