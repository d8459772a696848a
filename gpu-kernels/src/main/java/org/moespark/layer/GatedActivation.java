package org.moespark.layer;

/**
 * The gated activation between an expert's gate/up GEMMs and its down GEMM, for gate value {@code g}
 * and up value {@code u} of one intermediate channel:
 *
 * <pre>
 *   g' = min(g, limit)                       gate clamped from above only
 *   u' = clamp(u, -limit, +limit)            up clamped on both sides
 *   a  = act(g') · (u' + beta)               act = silu with slope alpha: g'·sigmoid(alpha·g'), or identity
 * </pre>
 *
 * With the defaults (limit +inf, alpha 1, beta 0) and {@link Kind#SILU} this is the SwiGLU expert of
 * Mixtral / Qwen / OLMoE / DeepSeek and TensorRT {@code IMoELayer}'s {@code kSILU}:
 * {@code silu(g)·u}. {@link #GPT_OSS} is GPT-OSS's clamped variant (limit 7.0, alpha 1.702, beta 1.0 —
 * the "+1" on up), in the exact order of {@code GptOssExperts} and {@code gpt_oss/torch/model.py}: clamp
 * first, then {@code g·sigmoid(alpha·g)}, then multiply by {@code (u + 1)}. TensorRT's
 * {@code setSwigluParams(limit, alpha, beta)} names the same three parameters (moe-ops-semantics §11.3;
 * TensorRT does not publish the formula, this is the interpretation TensorRT-LLM uses).
 * {@link Kind#NONE} (TensorRT {@code kNONE}) is taken to mean {@code a = g'·(u' + beta)}.
 *
 * <p>NaN in {@code g} or {@code u} propagates to {@code a} (the clamps keep NaN, as torch's clamp does).
 *
 * @param kind silu or none
 * @param limit clamp bound, {@code +inf} for none; must not be NaN or negative
 * @param alpha slope inside the sigmoid; finite
 * @param beta added to the clamped up value; finite
 */
public record GatedActivation(Kind kind, float limit, float alpha, float beta) {
  /** The activation applied to the clamped gate value. */
  public enum Kind {
    /** Identity on the gate: {@code a = g'·(u'+beta)} (TensorRT {@code MoEActType.kNONE}). */
    NONE,
    /** {@code g'·sigmoid(alpha·g')} (TensorRT {@code kSILU}, HF {@code hidden_act: silu}). */
    SILU
  }

  /** {@code silu(g)·u}: Mixtral, Qwen2/3-MoE, OLMoE, DeepSeek-V3, TensorRT default. */
  public static final GatedActivation SWIGLU = new GatedActivation(Kind.SILU, Float.POSITIVE_INFINITY, 1f, 0f);
  /** GPT-OSS: limit 7.0, alpha 1.702, beta 1.0. */
  public static final GatedActivation GPT_OSS = new GatedActivation(Kind.SILU, 7.0f, 1.702f, 1.0f);

  public GatedActivation {
    if (kind == null) {
      throw new IllegalArgumentException("activation kind must not be null");
    }
    if (Float.isNaN(limit) || limit < 0) {
      throw new IllegalArgumentException("swiglu limit must be >= 0 (or +inf), got " + limit);
    }
    if (!Float.isFinite(alpha)) {
      throw new IllegalArgumentException("swiglu alpha must be finite, got " + alpha);
    }
    if (!Float.isFinite(beta)) {
      throw new IllegalArgumentException("swiglu beta must be finite, got " + beta);
    }
  }

  /** True for exactly {@code silu(g)·u} (no clamp, alpha 1, beta 0). */
  public boolean isPlainSwiglu() {
    return kind == Kind.SILU && limit == Float.POSITIVE_INFINITY && alpha == 1f && beta == 0f;
  }

  /** The activation of one channel in fp32 (no intermediate rounding). */
  public float apply(float g, float u) {
    float gc = g > limit ? limit : g; // NaN stays NaN
    float uc = u > limit ? limit : (u < -limit ? -limit : u);
    float act = kind == Kind.SILU ? gc * LayerNumerics.sigmoid(alpha * gc) : gc;
    return act * (uc + beta);
  }

  /**
   * The activation of one channel as transformers computes it on bf16 tensors: every intermediate
   * tensor rounded to bf16 (plain SwiGLU: {@code bf16(bf16(silu(g))·u)}; GPT-OSS:
   * {@code glu = bf16(g·bf16(sigmoid(bf16(g·alpha))))}, {@code a = bf16(bf16(u+1)·glu)}).
   */
  public float applyBf16(float g, float u) {
    float gc = g > limit ? limit : g;
    float uc = u > limit ? limit : (u < -limit ? -limit : u);
    float act;
    if (kind == Kind.NONE) {
      act = gc;
    } else if (alpha == 1f) {
      act = LayerNumerics.bf16(gc * LayerNumerics.sigmoid(gc)); // torch silu: one rounding
    } else {
      float s = LayerNumerics.bf16(LayerNumerics.sigmoid(LayerNumerics.bf16(gc * alpha)));
      act = LayerNumerics.bf16(gc * s);
    }
    float up = beta == 0f ? uc : LayerNumerics.bf16(uc + beta);
    return LayerNumerics.bf16(act * up);
  }
}
