package org.moespark.layer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.moespark.model.Checkpoint;
import org.moespark.model.DType;
import org.moespark.model.MoeBlockWeights;
import org.moespark.model.MoeConfig;
import org.moespark.model.WeightTensor;

/**
 * Reads one MoE block of a Hugging Face checkpoint ({@code org.moespark.model}) into a
 * {@link MoeBlockSpec}, dequantizing every weight to fp32 once.
 */
final class MoeBlockLoader {
  private MoeBlockLoader() {}

  static MoeBlockSpec load(Path modelDir, int layer) {
    MoeConfig cfg;
    try {
      cfg = MoeConfig.load(modelDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the config of " + modelDir + ": " + e.getMessage(), e);
    }
    try (Checkpoint ckpt = Checkpoint.open(modelDir)) {
      return toSpec(cfg, MoeBlockWeights.load(ckpt, cfg, layer));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the checkpoint " + modelDir + ": " + e.getMessage(), e);
    }
  }

  static MoeBlockSpec toSpec(MoeConfig cfg, MoeBlockWeights b) {
    int h = cfg.hiddenSize();
    int numE = cfg.numExperts();
    int k = cfg.topK();
    if (!"silu".equals(cfg.hiddenAct())) {
      throw new IllegalArgumentException("hidden_act '" + cfg.hiddenAct() + "' of " + cfg.modelType()
          + " is not supported (the experts are SwiGLU: hidden_act must be 'silu')");
    }
    float[] router = dequant(b.router());
    MoeConfig.Family family = cfg.family();
    RouterSpec rs = switch (cfg.routingKind()) {
      // Mixtral always renormalises; Qwen/OLMoE follow norm_topk_prob and cast the weights to the model dtype
      case SOFTMAX_TOPK -> RouterSpec.softmaxTopK(h, numE, k, router,
          family == MoeConfig.Family.MIXTRAL || cfg.normTopkProb(), family != MoeConfig.Family.MIXTRAL);
      case TOPK_SOFTMAX -> RouterSpec.topKSoftmax(h, numE, k, router, vector(b.routerBias()));
      case SIGMOID_GROUPED -> RouterSpec.sigmoidGroupedTopK(h, numE, k, router, vector(b.scoreCorrectionBias()),
          cfg.nGroup(), cfg.topkGroup(), cfg.normTopkProb(), (float) cfg.routedScalingFactor());
    };
    GatedActivation act = family == MoeConfig.Family.GPT_OSS
        ? new GatedActivation(GatedActivation.Kind.SILU, (float) cfg.swigluLimit(), (float) cfg.swigluAlpha(), 1f)
        : GatedActivation.SWIGLU;
    List<ExpertWeights> experts = new ArrayList<>(numE);
    for (MoeBlockWeights.Expert e : b.experts()) {
      experts.add(expert(e));
    }
    ExpertWeights shared = b.sharedExpert() == null ? null : expert(b.sharedExpert());
    float[] sharedGate = b.sharedExpertGate() == null ? null : vector(b.sharedExpertGate());
    return new MoeBlockSpec(cfg.modelType(), rs, experts, act, shared, sharedGate, fp4Experts(b.experts()));
  }

  /** The experts' checkpoint tensors when all of them are MXFP4, or all NVFP4; else null. */
  private static List<Fp4Expert> fp4Experts(List<MoeBlockWeights.Expert> es) {
    WeightTensor.Format f = es.isEmpty() ? null : es.get(0).gate().format();
    if (f != WeightTensor.Format.MXFP4 && f != WeightTensor.Format.NVFP4) {
      return null;
    }
    List<Fp4Expert> out = new ArrayList<>(es.size());
    for (MoeBlockWeights.Expert e : es) {
      if (e.gate().format() != f || e.up().format() != f || e.down().format() != f) {
        return null;
      }
      out.add(new Fp4Expert(e.gate(), e.up(), e.down()));
    }
    return out;
  }

  private static ExpertWeights expert(MoeBlockWeights.Expert e) {
    return new ExpertWeights(e.hiddenSize(), e.intermediateSize(), dequant(e.gate()), dequant(e.up()),
        dequant(e.down()), vector(e.gateBias()), vector(e.upBias()), vector(e.downBias()));
  }

  private static float[] vector(WeightTensor t) {
    return t == null ? null : dequant(t);
  }

  /** One weight to fp32 [rows·cols], whatever its stored format. */
  static float[] dequant(WeightTensor w) {
    return switch (w.format()) {
      case F32, F16, BF16 -> w.toFloatArray();
      case FP8_E4M3_BLOCK128 -> WeightDequant.fp8Block(w.data(), scalesAsFloat(w), w.rows(), w.cols(), w.blockRows(),
          w.blockCols());
      case MXFP4 -> WeightDequant.mxfp4(w.data(), w.scales(), w.rows(), w.cols());
      case NVFP4 -> WeightDequant.nvfp4(w.data(), w.scales(), w.globalScale(), w.rows(), w.cols());
    };
  }

  /** Block-FP8 scales: F32 multipliers, or E8M0 power-of-two bytes (UE8M0 checkpoints). */
  private static float[] scalesAsFloat(WeightTensor w) {
    int n = w.scaleRows() * w.scaleCols();
    ByteBuffer s = w.scales().duplicate().order(ByteOrder.LITTLE_ENDIAN);
    float[] out = new float[n];
    if (w.scalesDtype() == DType.F32) {
      for (int i = 0; i < n; i++) {
        out[i] = s.getFloat(4 * i);
      }
    } else if (w.scalesDtype() == DType.F8_E8M0) {
      for (int i = 0; i < n; i++) {
        int b = s.get(i) & 0xFF;
        out[i] = b == 255 ? Float.NaN : Math.scalb(1f, b - 127);
      }
    } else {
      throw new IllegalArgumentException("weight '" + w.name() + "': block FP8 scales of dtype " + w.scalesDtype()
          + " are not supported (F32 or F8_E8M0)");
    }
    return out;
  }
}
