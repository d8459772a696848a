package org.moespark.ops;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;

/**
 * CUDA twin of {@link MoeDispatch} (Paddle incubate {@code moe_dispatch}, moe-ops-semantics.md §5):
 * the GPU router ({@link RoutingGpu}'s kernel, gating modes as the CPU: softmax top-k without
 * renormalisation, {@code topkOnlyMode}, {@code groupMoe}) composed with {@link MoePermuteGpu}'s
 * expert-major maps and row scatter at {@code paddingAlignment = 1}. Row order is expert ascending,
 * then token ascending, exactly as the CPU's stable counting sort, so every map and every row is
 * bit-identical to {@link MoeDispatch} whenever the gating ids are (ids are exact for
 * {@code topkOnlyMode}; with a softmax they can differ only at near-ties, see {@link RoutingGpu});
 * weights agree within fp32 tolerance.
 *
 * <p>One host synchronization (the permute maps' validation, which also reads back the rows per expert
 * counted on the device: they size the maps and give {@link DeviceDispatch#tokenNumsPerExpert}); everything else is asynchronous on the allocator's
 * stream. Limits: {@code numExperts ≤} {@link MoePermute#MAX_EXPERTS} (the permute maps' limit).
 * Device data is not inspected: NaN / {@code +inf} gating values are not rejected as on the CPU (see
 * {@link RoutingGpu}).
 */
public final class MoeDispatchGpu {
  private MoeDispatchGpu() {}

  /** The outputs of {@code moe_dispatch} on the device, under their upstream names; close to free them. */
  public static final class DeviceDispatch implements AutoCloseable {
    public final int tokens;
    public final int numExperts;
    public final int moeTopk;
    /** Host copy of {@code token_nums_per_expert}: [E] inclusive prefix sum of rows per expert. */
    public final long[] tokenNumsPerExpert;
    /** {@code [N*k, rowBytes]} rows grouped by expert. */
    public final DeviceBuffer permuteInput;
    /** {@code [k, N]} int32: row of token t's j-th choice at {@code [j*N + t]}. */
    public final DeviceBuffer permuteIndicesPerToken;
    /** {@code [N, k]} fp32 routing weights. */
    public final DeviceBuffer expertScalesFloat;
    /** {@code [N, k]} int32 chosen experts, selection order. */
    public final DeviceBuffer topKIndices;
    /** {@code [N*k]} int32 source token of each row. */
    public final DeviceBuffer sourceTokenOfRow;
    private final MoePermuteGpu.DeviceMaps maps;
    private final DeviceBuffer routing;
    private final DeviceBuffer perm;

    DeviceDispatch(int tokens, int numExperts, int moeTopk, long[] tokenNums, DeviceBuffer permuteInput,
        DeviceBuffer perm, DeviceBuffer routing, MoePermuteGpu.DeviceMaps maps) {
      this.tokens = tokens;
      this.numExperts = numExperts;
      this.moeTopk = moeTopk;
      this.tokenNumsPerExpert = tokenNums;
      this.permuteInput = permuteInput;
      this.perm = perm;
      this.permuteIndicesPerToken = perm;
      long slots = 4L * tokens * moeTopk;
      this.routing = routing;
      this.topKIndices = routing.view(0, slots);
      this.expertScalesFloat = routing.view(slots, slots);
      this.maps = maps;
      this.sourceTokenOfRow = maps.sourceRow;
    }

    @Override
    public void close() {
      if (permuteInput != null) {
        permuteInput.close();
      }
      perm.close();
      routing.close();
      maps.close();
    }
  }

  /**
   * Gating plus permutation maps, without the data movement ({@link MoeDispatch#maps}'s twin;
   * {@link DeviceDispatch#permuteInput} is null).
   *
   * @param gatingOutput {@code [tokens, numExperts]} fp32 device values
   */
  public static DeviceDispatch maps(DeviceAllocator alloc, DeviceBuffer gatingOutput, int tokens, int numExperts,
      int moeTopk, boolean groupMoe, boolean topkOnlyMode) {
    return run(alloc, null, 0, gatingOutput, tokens, numExperts, moeTopk, groupMoe, topkOnlyMode);
  }

  /**
   * {@code moe_dispatch}: gating, maps and the permuted rows.
   *
   * @param x {@code [tokens, rowBytes]} token rows (bf16, fp32 or fp8 bytes: moved, never converted)
   * @param rowBytes bytes per token row ({@code hidden · element size})
   * @param gatingOutput {@code [tokens, numExperts]} fp32 (logits, or probabilities with topkOnlyMode)
   */
  public static DeviceDispatch dispatch(DeviceAllocator alloc, DeviceBuffer x, long rowBytes, DeviceBuffer gatingOutput,
      int tokens, int numExperts, int moeTopk, boolean groupMoe, boolean topkOnlyMode) {
    if (rowBytes <= 0) {
      throw OpChecks.fail("MoeDispatchGpu", "rowBytes must be positive, got " + rowBytes);
    }
    RoutingGpu.fits("MoeDispatchGpu", "x", x, Math.multiplyExact(rowBytes, (long) tokens),
        "[" + tokens + ", " + rowBytes + " bytes]");
    return run(alloc, x, rowBytes, gatingOutput, tokens, numExperts, moeTopk, groupMoe, topkOnlyMode);
  }

  private static DeviceDispatch run(DeviceAllocator alloc, DeviceBuffer x, long rowBytes, DeviceBuffer gating,
      int tokens, int numExperts, int moeTopk, boolean groupMoe, boolean topkOnlyMode) {
    String op = "MoeDispatchGpu";
    OpChecks.nonNull(op, "alloc", alloc);
    OpChecks.nonNegative(op, "tokens", tokens);
    OpChecks.inRange(op, "numExperts", numExperts, 1, MoePermute.MAX_EXPERTS);
    OpChecks.inRange(op, "moeTopk", moeTopk, 1, numExperts);
    if (groupMoe && numExperts % moeTopk != 0) {
      throw OpChecks.fail(op, "groupMoe needs numExperts (" + numExperts + ") divisible by moeTopk (" + moeTopk + ")");
    }
    RoutingGpu.checkShape(op, tokens, numExperts, moeTopk);
    RoutingGpu.fits(op, "gatingOutput", gating, 4L * tokens * numExperts, "[" + tokens + ", " + numExperts + "] fp32");
    RoutingGpu.launchable(op, alloc.stream());
    long slots = 4L * tokens * moeTopk;
    DeviceBuffer routing = alloc.allocate(Math.max(8, 2 * slots), "MoeDispatchGpu ids+weights");
    DeviceBuffer perm = null;
    MoePermuteGpu.DeviceMaps maps = null;
    try {
      DeviceBuffer ids = routing.view(0, slots);
      DeviceBuffer w = routing.view(slots, slots);
      RoutingGpu.dispatchGating(gating, tokens, numExperts, moeTopk, groupMoe, topkOnlyMode, ids, w, alloc.stream());
      // the maps count the experts' rows on the device (one synchronization for both)
      maps = MoePermuteGpu.maps(alloc, ids, w, tokens, moeTopk, numExperts, null, 1);
      long[] prefix = new long[numExperts];
      for (int e = 0; e < numExperts; e++) {
        prefix[e] = maps.expertRowOffsets[e + 1];
      }
      perm = alloc.allocate(Math.max(4, slots), "permuteIndicesPerToken");
      indices0(ids.address(), maps.rowmap.address(), tokens, moeTopk, numExperts, perm.address(),
          alloc.stream().handle());
      DeviceBuffer rows = x == null ? null : MoePermuteGpu.permuteRows(alloc, maps, x, rowBytes);
      return new DeviceDispatch(tokens, numExperts, moeTopk, prefix, rows, perm, routing, maps);
    } catch (RuntimeException e) {
      if (maps != null) {
        maps.close();
      }
      if (perm != null) {
        perm.close();
      }
      routing.close();
      throw e;
    }
  }

  private static native void indices0(long ids, long rowmap, long tokens, int topK, int experts, long perm,
      long stream);
}
