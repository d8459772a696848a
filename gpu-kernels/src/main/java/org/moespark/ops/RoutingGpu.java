package org.moespark.ops;

import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * CUDA twins of the {@link Routing} routers on device logits: {@link #softmaxTopK},
 * {@link #topKSoftmax} (GPT-OSS) and {@link #sigmoidGroupedTopK} (DeepSeek-V3 {@code noaux_tc}).
 * Same semantics, slot order and tie rule as the CPU reference: slot {@code j} of a token holds its
 * {@code j}-th best expert, and equal scores go to the <b>lower expert index</b>.
 *
 * <p>Shapes and types: logits {@code [tokens, experts]} row-major, fp32 or bf16 bits
 * ({@link LogitsType}; bf16 logits are widened exactly to fp32 first, so the reference for bf16 is
 * {@link Routing} on the decoded values); outputs int32 ids and fp32 weights {@code [tokens, topK]}
 * row-major. Every call is asynchronous on the given stream; nothing is allocated except by the
 * allocator overloads, and nothing is synchronised.
 *
 * <p>Numerics: probabilities use CUDA {@code expf} and an fp32 sigmoid {@code 1 / (1 + expf(-x))}
 * (the CPU rounds a double {@code exp} once), and the softmax denominator is summed in a lane-tree
 * order (the CPU sums in ascending expert order); max, top-k, renormalisation sums (in slot order),
 * divisions and the routed scaling are the CPU's fp32 operations. So weights agree within fp32
 * tolerance, and ids are equal except at near-ties: scores a few ulp apart whose order the
 * different {@code exp} rounding can flip. Exact ties (equal logits) are ties on both sides and
 * resolve to the lower index. {@code topKSoftmax} selects on the raw logits, so its ids are always
 * identical.
 *
 * <p>Differences from the CPU reference, all about values the CPU rejects or cannot tell apart:
 * the device data is not inspected, so NaN, {@code +inf} and all-{@code -inf} softmax rows are not
 * rejected (their weights are undefined; a NaN logit ranks like {@code -inf}); a {@code -inf}
 * selection score ranks equal to {@code -Float.MAX_VALUE} (the CPU ranks it lower); the
 * correction bias is not checked for finiteness. Ids are always distinct and in {@code [0, E)}.
 *
 * <p>Limits: {@code experts ≤} {@link #MAX_EXPERTS}; with {@code nGroup > 1} the group size
 * {@code experts / nGroup} must be a power of two (DeepSeek-V3: 256 / 8 = 32). One token per
 * {@code ceil(E/16)} lanes (rounded up to a power of two), 16 experts per lane in registers; no
 * global scratch, no atomics, so results are deterministic.
 */
public final class RoutingGpu {
  private RoutingGpu() {}

  /** Largest expert count (32 lanes × 16 experts). */
  public static final int MAX_EXPERTS = 512;

  /** Element type of the device logits. */
  public enum LogitsType {
    /** fp32, 4 bytes. */
    F32(4),
    /** bf16 bits (uint16), 2 bytes; widened exactly to fp32. */
    BF16(2);

    /** Bytes per element. */
    public final int bytes;

    LogitsType(int bytes) {
      this.bytes = bytes;
    }
  }

  // Mode ids shared with routing.cuh (RoutingMode).
  private static final int SOFTMAX_TOPK = 0;
  private static final int TOPK_SOFTMAX = 1;
  private static final int SIGMOID_GROUPED = 2;

  /** Device routing result: {@code ids} int32 and {@code weights} fp32, both {@code [tokens, topK]}. */
  public record DeviceResult(int tokens, int topK, DeviceBuffer ids, DeviceBuffer weights) implements AutoCloseable {
    /** Copies the result to the host (synchronous) as a {@link Routing.Result}. */
    public Routing.Result toHost() {
      int n = tokens * topK;
      return new Routing.Result(tokens, topK, n == 0 ? new int[0] : ids.toInts(n),
          n == 0 ? new float[0] : weights.toFloats(n));
    }

    @Override
    public void close() {
      ids.close();
      weights.close();
    }
  }

  /**
   * {@link Routing#softmaxTopK} on the device: softmax over all experts, top-k of the probabilities,
   * optionally renormalised ({@code w / Σw}, Σ in slot order).
   *
   * @param logits {@code [tokens, experts]} of {@code type}
   * @param ids out, int32 {@code [tokens, topK]}
   * @param weights out, fp32 {@code [tokens, topK]}
   * @param stream the stream the kernel runs on (asynchronous)
   */
  public static void softmaxTopK(DeviceBuffer logits, LogitsType type, int tokens, int experts, int topK,
      boolean renormalize, DeviceBuffer ids, DeviceBuffer weights, CudaStream stream) {
    String op = "RoutingGpu.softmaxTopK";
    check(op, logits, type, tokens, experts, topK, ids, weights);
    launchable(op, stream);
    route0(SOFTMAX_TOPK, logits.address(), type == LogitsType.BF16, tokens, experts, topK, renormalize, 0L, 1, 1, 1f,
        false, ids.address(), weights.address(), stream.handle());
  }

  /** {@link #softmaxTopK} into new buffers from {@code alloc}, on the allocator's stream. */
  public static DeviceResult softmaxTopK(DeviceAllocator alloc, DeviceBuffer logits, LogitsType type, int tokens,
      int experts, int topK, boolean renormalize) {
    DeviceResult r = allocate(alloc, "RoutingGpu.softmaxTopK", tokens, experts, topK);
    try {
      softmaxTopK(logits, type, tokens, experts, topK, renormalize, r.ids(), r.weights(), alloc.stream());
      return r;
    } catch (RuntimeException e) {
      r.close();
      throw e;
    }
  }

  /**
   * {@link Routing#topKSoftmax} on the device (GPT-OSS): top-k of the raw logits (router bias already
   * added), then a softmax over the k selected values in fp32.
   */
  public static void topKSoftmax(DeviceBuffer logits, LogitsType type, int tokens, int experts, int topK,
      DeviceBuffer ids, DeviceBuffer weights, CudaStream stream) {
    String op = "RoutingGpu.topKSoftmax";
    check(op, logits, type, tokens, experts, topK, ids, weights);
    launchable(op, stream);
    route0(TOPK_SOFTMAX, logits.address(), type == LogitsType.BF16, tokens, experts, topK, false, 0L, 1, 1, 1f, false,
        ids.address(), weights.address(), stream.handle());
  }

  /** {@link #topKSoftmax} into new buffers from {@code alloc}, on the allocator's stream. */
  public static DeviceResult topKSoftmax(DeviceAllocator alloc, DeviceBuffer logits, LogitsType type, int tokens,
      int experts, int topK) {
    DeviceResult r = allocate(alloc, "RoutingGpu.topKSoftmax", tokens, experts, topK);
    try {
      topKSoftmax(logits, type, tokens, experts, topK, r.ids(), r.weights(), alloc.stream());
      return r;
    } catch (RuntimeException e) {
      r.close();
      throw e;
    }
  }

  /**
   * {@link Routing#sigmoidGroupedTopK(float[], int, int, int, float[], int, int, boolean, float,
   * Routing.GroupMask)} on the device (DeepSeek-V3 / R1 / Kimi-K2): sigmoid scores, the correction
   * bias added for selection only, group score = sum of the group's top-2 biased scores, the
   * {@code topkGroup} best groups kept (ties: lower group), the others masked by {@code mask},
   * top-k, weights = the unbiased scores, renormalised by {@code Σ + 1e-20} when asked, times
   * {@code routedScalingFactor}.
   *
   * @param correctionBias fp32 {@code [experts]} device buffer, or {@code null}
   * @param nGroup divides {@code experts}; when {@code > 1} the group size must be a power of two
   */
  public static void sigmoidGroupedTopK(DeviceBuffer logits, LogitsType type, int tokens, int experts, int topK,
      DeviceBuffer correctionBias, int nGroup, int topkGroup, boolean renormalize, float routedScalingFactor,
      Routing.GroupMask mask, DeviceBuffer ids, DeviceBuffer weights, CudaStream stream) {
    String op = "RoutingGpu.sigmoidGroupedTopK";
    check(op, logits, type, tokens, experts, topK, ids, weights);
    OpChecks.nonNull(op, "mask", mask);
    OpChecks.positive(op, "nGroup", nGroup);
    if (experts % nGroup != 0) {
      throw OpChecks.fail(op, "experts (" + experts + ") must be a multiple of nGroup (" + nGroup + ")");
    }
    OpChecks.inRange(op, "topkGroup", topkGroup, 1, nGroup);
    int groupSize = experts / nGroup;
    if (nGroup > 1 && Integer.bitCount(groupSize) != 1) {
      throw OpChecks.fail(op, "the GPU router needs a power-of-two group size, got experts / nGroup = " + experts
          + " / " + nGroup + " = " + groupSize + " (use Routing.sigmoidGroupedTopK on the CPU)");
    }
    if (mask == Routing.GroupMask.NEG_INF && (long) topkGroup * groupSize < topK) {
      throw OpChecks.fail(op, "topK (" + topK + ") exceeds the experts of the kept groups (topkGroup " + topkGroup
          + " x group size " + groupSize + ")");
    }
    if (!Float.isFinite(routedScalingFactor)) {
      throw OpChecks.fail(op, "routedScalingFactor must be finite, got " + routedScalingFactor);
    }
    if (correctionBias != null) {
      fits(op, "correctionBias", correctionBias, 4L * experts, "[" + experts + "] fp32");
    }
    launchable(op, stream);
    route0(SIGMOID_GROUPED, logits.address(), type == LogitsType.BF16, tokens, experts, topK, renormalize,
        correctionBias == null ? 0L : correctionBias.address(), nGroup, topkGroup, routedScalingFactor,
        mask == Routing.GroupMask.ZERO, ids.address(), weights.address(), stream.handle());
  }

  /** {@link #sigmoidGroupedTopK} into new buffers from {@code alloc}, on the allocator's stream. */
  public static DeviceResult sigmoidGroupedTopK(DeviceAllocator alloc, DeviceBuffer logits, LogitsType type,
      int tokens, int experts, int topK, DeviceBuffer correctionBias, int nGroup, int topkGroup, boolean renormalize,
      float routedScalingFactor, Routing.GroupMask mask) {
    DeviceResult r = allocate(alloc, "RoutingGpu.sigmoidGroupedTopK", tokens, experts, topK);
    try {
      sigmoidGroupedTopK(logits, type, tokens, experts, topK, correctionBias, nGroup, topkGroup, renormalize,
          routedScalingFactor, mask, r.ids(), r.weights(), alloc.stream());
      return r;
    } catch (RuntimeException e) {
      r.close();
      throw e;
    }
  }

  /** Shape checks shared by every router (also used by {@link MoeDispatchGpu}). */
  static void checkShape(String op, int tokens, int experts, int topK) {
    OpChecks.nonNegative(op, "tokens", tokens);
    OpChecks.inRange(op, "experts", experts, 1, MAX_EXPERTS);
    OpChecks.inRange(op, "topK", topK, 1, experts);
    OpChecks.elements(op, "logits [tokens, experts]", tokens, experts);
    OpChecks.elements(op, "ids [tokens, topK]", tokens, topK);
  }

  private static void check(String op, DeviceBuffer logits, LogitsType type, int tokens, int experts, int topK,
      DeviceBuffer ids, DeviceBuffer weights) {
    OpChecks.nonNull(op, "type", type);
    checkShape(op, tokens, experts, topK);
    String shape = "[" + tokens + ", " + experts + "] " + type;
    fits(op, "logits", logits, (long) type.bytes * tokens * experts, shape);
    fits(op, "ids", ids, 4L * tokens * topK, "[" + tokens + ", " + topK + "] int32");
    fits(op, "weights", weights, 4L * tokens * topK, "[" + tokens + ", " + topK + "] fp32");
  }

  /** Last check before a launch: the stream, then the native library. */
  static void launchable(String op, CudaStream stream) {
    OpChecks.nonNull(op, "stream", stream);
    NativeLibrary.requireAvailable();
  }

  private static DeviceResult allocate(DeviceAllocator alloc, String op, int tokens, int experts, int topK) {
    OpChecks.nonNull(op, "alloc", alloc);
    checkShape(op, tokens, experts, topK);
    long bytes = Math.max(4L, 4L * tokens * topK);
    DeviceBuffer ids = alloc.allocate(bytes, op + " ids");
    try {
      return new DeviceResult(tokens, topK, ids, alloc.allocate(bytes, op + " weights"));
    } catch (RuntimeException e) {
      ids.close();
      throw e;
    }
  }

  static void fits(String op, String name, DeviceBuffer b, long bytes, String shape) {
    if (b == null) {
      throw OpChecks.fail(op, name + " must not be null");
    }
    if (b.size() < bytes) {
      throw OpChecks.fail(op, name + " " + shape + " needs " + bytes + " bytes but the device buffer has " + b.size());
    }
  }

  private static native void route0(int mode, long logits, boolean bf16, long tokens, int experts, int topK,
      boolean renormalize, long bias, int nGroup, int topkGroup, float scale, boolean maskZero, long ids, long weights,
      long stream);
}
