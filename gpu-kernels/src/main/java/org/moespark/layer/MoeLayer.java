package org.moespark.layer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.moespark.cuda.NativeLibrary;

/**
 * One MoE block of a Hugging Face checkpoint (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE, DeepSeek-V3,
 * GPT-OSS), run on the CPU or, with {@link Backend#GPU} (or {@link Backend#AUTO} where a GPU is usable),
 * on a CUDA device ({@link MoeLayerGpu}: bf16 tensor-core grouped GEMMs, weights resident on the device,
 * results within {@code Tolerance.BF16} of the CPU backend, routing identical). The CPU pipeline:
 *
 * <pre>
 *   route:     ids, w = router(x)                         per family, models-and-formats §2.7 ({@link RouterSpec.Kind})
 *   permute:   group (token, slot) pairs by expert         experts ascending, tokens ascending
 *   experts:   o = Expert_e(rows of x)                     one sgemm batch per expert ({@link ExpertFfn})
 *   unpermute: y[t] = Σ_j w[t][j] · o[t][j]                ascending expert order per token ({@link ExpertMixture})
 *   shared:    y += sigmoid(x·g) · Shared(x)  (Qwen2-MoE) | y += Shared(x)  (DeepSeek-V3)
 * </pre>
 *
 * The whole block output is returned (no residual, no norm: those are the decoder layer's).
 * Weights are dequantized to fp32 once at load (bf16, FP8 e4m3 with 128×128 {@code weight_scale_inv},
 * MXFP4, NVFP4); GEMMs accumulate in fp32. {@link Compute#BF16} rounds as transformers' bf16 eager
 * forward does. Quantized checkpoints run weight-only: activations are not quantized (an NVFP4
 * {@code input_scale} or DeepSeek's dynamic per-128 FP8 activation quantization is not emulated), so
 * results match a dequantize-then-bf16/fp32 reference, not the FP8/FP4 GEMM kernels bit for bit.
 * TensorRT's static activation quantization is available per expert through
 * {@link ExpertFfn#create} and {@link ExpertMixture}.
 *
 * <p>Thread safety: a loaded layer is immutable; {@link #forward} allocates its scratch per call and may
 * be called concurrently from any number of threads (Spark tasks share one layer per JVM); the result
 * does not depend on concurrency (same bits).
 *
 * <p>NaN: rows are independent. A NaN in a token's input row makes that token's logits NaN; NaN ranks
 * above every number in top-k (as {@code torch.topk}), its routing weights and its output row are NaN;
 * no other token is affected. A ±inf input behaves as IEEE arithmetic dictates.
 */
public final class MoeLayer implements AutoCloseable {
  /** The result of {@link #forward}: {@code y [tokens, hidden]}, the routing {@code [tokens, topK]}. */
  public record Output(int tokens, int hidden, int topK, float[] y, int[] topkIds, float[] topkWeights) {}

  private final String modelType;
  private final int hidden;
  private final Router router;
  private final ExpertMixture experts;
  private final ExpertFfn shared;
  private final float[] sharedGate;
  private final Compute compute;
  /** The GPU backend, or null on the CPU. */
  private final MoeLayerGpu gpu;
  /** Gives the GPU backend back (to the weight cache, or closes it); null on the CPU. */
  private final Runnable releaseGpu;
  private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

  private MoeLayer(String modelType, RouterSpec routerSpec, MoeLayerGpu gpu, Runnable releaseGpu, Compute compute) {
    this.modelType = modelType;
    this.hidden = routerSpec.hidden();
    this.compute = compute;
    this.router = new Router(routerSpec, compute);
    this.experts = null;
    this.shared = null;
    this.sharedGate = null;
    this.gpu = gpu;
    this.releaseGpu = releaseGpu;
  }

  private MoeLayer(MoeBlockSpec spec, Compute compute) {
    this.gpu = null;
    this.releaseGpu = null;
    this.modelType = spec.modelType();
    this.hidden = spec.router().hidden();
    this.compute = compute;
    this.router = new Router(spec.router(), compute);
    List<ExpertFfn> ffns = new ArrayList<>(spec.experts().size());
    // experts given the very same ExpertWeights object share one compiled FFN (synthetic layers)
    Map<ExpertWeights, ExpertFfn> built = new IdentityHashMap<>();
    for (ExpertWeights w : spec.experts()) {
      ffns.add(built.computeIfAbsent(w, ww -> ExpertFfn.of(ww, spec.activation(), compute)));
    }
    this.experts = new ExpertMixture(ffns, compute);
    this.shared = spec.shared() == null ? null : ExpertFfn.of(spec.shared(), spec.activation(), compute);
    if (spec.sharedGate() != null) {
      this.sharedGate = spec.sharedGate().clone();
      if (compute == Compute.BF16) {
        LayerNumerics.bf16InPlace(sharedGate, 0, sharedGate.length);
      }
    } else {
      this.sharedGate = null;
    }
  }

  /**
   * Loads MoE block {@code layer} of the Hugging Face checkpoint in {@code modelDir} ({@code config.json}
   * plus {@code model.safetensors} or a sharded index).
   *
   * @throws IllegalArgumentException for a layer that is not a MoE layer, an unsupported family or
   *     format, or an inconsistent checkpoint (the message names the tensor)
   * <p>On the GPU the device weights are cached per (checkpoint directory, layer, device, compute, GEMM precision): a
   * second load of the same block while one is open shares them (no second upload).
   *
   * @throws UnsupportedOperationException for {@link Backend#GPU} when no GPU is usable (the message says why)
   * @throws java.io.UncheckedIOException when the files cannot be read
   */
  public static MoeLayer load(Path modelDir, int layer, LayerOptions options) {
    if (modelDir == null) {
      throw new IllegalArgumentException("modelDir must not be null");
    }
    if (options == null) {
      throw new IllegalArgumentException("options must not be null");
    }
    if (resolve(options.backend()) == Backend.GPU) {
      GpuLayerCache.Lease lease = GpuLayerCache.acquire(modelDir, layer, options.compute(), options.gemmOrDefault(),
          () -> MoeBlockLoader.load(modelDir, layer));
      return new MoeLayer(lease.modelType(), lease.routerSpec(), lease.gpu(), lease::release, options.compute());
    }
    return new MoeLayer(MoeBlockLoader.load(modelDir, layer), options.compute());
  }

  /** Builds a layer from in-memory weights (tests, benchmarks, synthetic layers). */
  public static MoeLayer create(MoeBlockSpec spec, LayerOptions options) {
    if (spec == null) {
      throw new IllegalArgumentException("spec must not be null");
    }
    if (options == null) {
      throw new IllegalArgumentException("options must not be null");
    }
    if (resolve(options.backend()) == Backend.GPU) {
      MoeLayerGpu g = MoeLayerGpu.create(spec, options.compute());
      return new MoeLayer(spec.modelType(), spec.router(), g, g::close, options.compute());
    }
    return new MoeLayer(spec, options.compute());
  }

  /**
   * The backend a layer with option {@code b} runs on here: {@link Backend#AUTO} is the GPU when the
   * native library is loaded and a CUDA device is usable, else the CPU (the reason is logged once).
   *
   * @throws UnsupportedOperationException for {@link Backend#GPU} when the GPU is unavailable (with the reason)
   */
  public static Backend resolve(Backend b) {
    if (b == null) {
      throw new IllegalArgumentException("backend must not be null");
    }
    return switch (b) {
      case CPU -> Backend.CPU;
      case GPU -> {
        if (!NativeLibrary.isAvailable()) {
          throw new UnsupportedOperationException("backend GPU: the GPU is unavailable: "
              + NativeLibrary.unavailableReason() + "; use backend CPU or AUTO");
        }
        yield Backend.GPU;
      }
      case AUTO -> {
        if (NativeLibrary.isAvailable()) {
          yield Backend.GPU;
        }
        NativeLibrary.logFallbackOnce();
        yield Backend.CPU;
      }
    };
  }

  public int hiddenSize() {
    return hidden;
  }

  public int topK() {
    return router.spec().topK();
  }

  public int numExperts() {
    return router.spec().experts();
  }

  public String modelType() {
    return modelType;
  }

  /** {@code "gpu"} or {@code "cpu"}: where this layer runs. */
  public String backend() {
    return gpu != null ? "gpu" : "cpu";
  }

  /**
   * The GPU backend (device-buffer and pinned-memory entry points), or null for a CPU layer. Owned by
   * this layer (and, after {@link #load}, shared with other layers of the same block): close the
   * {@code MoeLayer}, never the returned object.
   */
  public MoeLayerGpu gpu() {
    return gpu;
  }

  public Compute compute() {
    return compute;
  }

  /**
   * Runs the block on {@code tokens} rows.
   *
   * @param x row-major {@code [tokens, hiddenSize()]} fp32 (for {@link Compute#BF16} rounded to bf16
   *     first, as a bf16 model's input is); not modified
   * @return y {@code [tokens, hidden]}, the chosen expert ids {@code [tokens, topK]} (descending routing
   *     score, ties to the lower id) and the weights applied to them {@code [tokens, topK]} (fp32; the
   *     bf16-rounded value where the family casts them to the model dtype)
   */
  public Output forward(float[] x, int tokens) {
    if (tokens < 0) {
      throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
    }
    if (x == null) {
      throw new IllegalArgumentException("x must not be null");
    }
    long expected = (long) tokens * hidden;
    if (x.length != expected) {
      throw new IllegalArgumentException("x must be [tokens=" + tokens + ", hidden=" + hidden + "] = " + expected
          + " floats, got " + x.length);
    }
    if (gpu != null) {
      if (closed.get()) {
        throw new IllegalStateException("MoE layer already closed");
      }
      return gpu.forward(x, tokens);
    }
    boolean bf16 = compute == Compute.BF16;
    float[] xin = x;
    if (bf16) {
      xin = x.clone();
      LayerNumerics.bf16InPlace(xin, 0, xin.length);
    }
    Router.Routed r = router.route(xin, tokens);
    int k = topK();
    float[] y = experts.forward(xin, tokens, k, r.ids(), r.weights());
    if (shared != null) {
      float[] s = new float[xin.length];
      shared.forward(xin, 0, tokens, s, 0);
      for (int t = 0; t < tokens; t++) {
        int b = t * hidden;
        float g = 1f;
        if (sharedGate != null) {
          float dot = 0f;
          for (int c = 0; c < hidden; c++) {
            dot += xin[b + c] * sharedGate[c];
          }
          g = bf16 ? LayerNumerics.bf16(LayerNumerics.sigmoid(LayerNumerics.bf16(dot))) : LayerNumerics.sigmoid(dot);
        }
        for (int c = 0; c < hidden; c++) {
          float v = sharedGate == null ? s[b + c] : g * s[b + c];
          if (bf16) {
            y[b + c] = LayerNumerics.bf16(y[b + c] + LayerNumerics.bf16(v));
          } else {
            y[b + c] += v;
          }
        }
      }
    }
    return new Output(tokens, hidden, k, y, r.ids(), r.weights());
  }

  /**
   * GPU backend: gives the device weights back (a layer from {@link #load} shares them with every open
   * layer of the same checkpoint, layer, device and compute; they are freed with the last one). CPU
   * backend: nothing to release. Idempotent.
   */
  @Override
  public void close() {
    if (releaseGpu != null && closed.compareAndSet(false, true)) {
      releaseGpu.run();
    }
  }
}
