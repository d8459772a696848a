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
 * @param fp4Experts the routed experts' weights as the checkpoint stores them when they are all MXFP4 or all
 *     NVFP4 (one per expert, the same values as {@code experts} dequantized), so that an FP4 GPU layer can take
 *     the codes as they are; null otherwise
 */
public record MoeBlockSpec(
    String modelType, RouterSpec router, List<ExpertWeights> experts, GatedActivation activation,
    ExpertWeights shared, float[] sharedGate, List<Fp4Expert> fp4Experts) {

  /** A block without checkpoint FP4 weights. */
  public MoeBlockSpec(String modelType, RouterSpec router, List<ExpertWeights> experts, GatedActivation activation,
      ExpertWeights shared, float[] sharedGate) {
    this(modelType, router, experts, activation, shared, sharedGate, null);
  }

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
    if (fp4Experts != null) {
      if (fp4Experts.size() != experts.size()) {
        throw new IllegalArgumentException("fp4Experts has " + fp4Experts.size() + " experts, experts "
            + experts.size());
      }
      fp4Experts = List.copyOf(fp4Experts);
      for (int e = 0; e < experts.size(); e++) {
        Fp4Expert q = fp4Experts.get(e);
        if (q.format() != fp4Experts.get(0).format()) {
          throw new IllegalArgumentException("fp4Experts mixes " + fp4Experts.get(0).format() + " (expert 0) and "
              + q.format() + " (expert " + e + ")");
        }
        if (q.hidden() != experts.get(e).hidden() || q.intermediate() != experts.get(e).intermediate()) {
          throw new IllegalArgumentException("fp4Experts " + e + " is [I=" + q.intermediate() + ", H=" + q.hidden()
              + "], the expert's weights [I=" + experts.get(e).intermediate() + ", H=" + experts.get(e).hidden() + "]");
        }
      }
    }
  }

  /** This block without the checkpoint FP4 weights (e.g. after its float weights were changed). */
  public MoeBlockSpec withoutFp4() {
    return fp4Experts == null ? this : new MoeBlockSpec(modelType, router, experts, activation, shared, sharedGate);
  }
}
