package org.moespark.ops;

import java.util.Arrays;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * CUDA twin of {@link MoePermute} / {@link MoeUnpermute} (Paddle semantics), on device buffers and the
 * allocator's stream. Produces bit-identical maps and rows: positions are integer prefix sums over
 * blocks of tokens in ascending order (no atomics); unpermute is a per-token gather-reduce in
 * ascending expert order with the CPU's fp32 operations, so its bf16/fp32 results are identical too.
 *
 * <p>Differences from the CPU reference: only {@code useMixPrecision = true} (fp32 accumulation, the
 * default and the only mode of upstream's 2026 kernel) is offered.
 */
public final class MoePermuteGpu {
  private MoePermuteGpu() {}

  /** The index maps on the device ({@link MoePermute.Maps}'s twin); close to free them. */
  public static final class DeviceMaps implements AutoCloseable {
    public final int tokens;
    public final int numExperts;
    public final int rows;
    /** Host copy of the segment offsets, [E + 1]. */
    public final int[] expertRowOffsets;
    /** [S, E] int32: row of (token, expert) or -1. */
    public final DeviceBuffer rowmap;
    /** [R] fp32: prob of each row, 0 for padding. */
    public final DeviceBuffer tokenProbUnzipped;
    /** [R] int32: expert of each row, -1 for padding. */
    public final DeviceBuffer expertIndices;
    /** [R] int32: source token of each row, -1 for padding. */
    public final DeviceBuffer sourceRow;
    /** Whether some rows are padding (their source is -1): only then must permuted copies zero rows. */
    public final boolean hasPadding;
    private final DeviceBuffer backing;

    /** {@code layoutRows ≥ rows}: the row count the backing's three row maps were laid out for. */
    DeviceMaps(int tokens, int numExperts, int rows, long layoutRows, int[] offsets, boolean hasPadding,
        DeviceBuffer backing) {
      this.tokens = tokens;
      this.numExperts = numExperts;
      this.rows = rows;
      this.expertRowOffsets = offsets;
      this.backing = backing;
      long rowmapBytes = 4L * tokens * numExperts;
      this.rowmap = backing.view(0, rowmapBytes);
      this.tokenProbUnzipped = backing.view(rowmapBytes, 4L * rows);
      this.expertIndices = backing.view(rowmapBytes + 4L * layoutRows, 4L * rows);
      this.sourceRow = backing.view(rowmapBytes + 8L * layoutRows, 4L * rows);
      this.hasPadding = hasPadding;
    }

    @Override
    public void close() {
      backing.close();
    }
  }

  /**
   * {@code moe_permute}'s maps ({@code do_gather = false}), as {@link MoePermute#maps}.
   *
   * @param route {@code [tokens, topK]} int32 expert ids (-1 = empty slot)
   * @param probs {@code [tokens, topK]} fp32
   * @param tokensPerExpert host array [E]; must equal the routemap's histogram (checked on the device
   *     before any row is written); or null: the histogram counted on the device is used (the same single
   *     synchronization; the maps' {@code expertRowOffsets} then carry it), for a routemap that was made on
   *     the device
   */
  public static DeviceMaps maps(DeviceAllocator alloc, DeviceBuffer route, DeviceBuffer probs, int tokens, int topK,
      int numExperts, int[] tokensPerExpert, int paddingAlignment) {
    NativeLibrary.requireAvailable();
    String op = "MoePermuteGpu";
    OpChecks.nonNegative(op, "tokens", tokens);
    OpChecks.positive(op, "topK", topK);
    OpChecks.inRange(op, "numExperts", numExperts, 1, MoePermute.MAX_EXPERTS);
    OpChecks.positive(op, "paddingAlignment", paddingAlignment);
    if (tokensPerExpert != null) {
      OpChecks.length(op, "tokensPerExpert", tokensPerExpert.length, numExperts, "[" + numExperts + "]");
    }
    long slots = (long) OpChecks.elements(op, "expertRoutemapTopk", tokens, topK);
    OpChecks.elements(op, "zippedExpertwiseRowmap [tokens, numExperts]", tokens, numExperts);
    fits(op, "expertRoutemapTopk", route, 4 * slots);
    fits(op, "expertProbTopk", probs, 4 * slots);
    long stream = alloc.stream().handle();

    // the rows the three row maps are laid out for: exactly the padded total when tokensPerExpert is given,
    // else the most a routemap of `slots` ids can need (each expert pads at most paddingAlignment - 1 rows)
    int[] offsets = new int[numExperts + 1];
    long layoutRows;
    if (tokensPerExpert != null) {
      layoutRows = segments(op, tokensPerExpert, paddingAlignment, offsets);
    } else {
      layoutRows = slots + (long) (paddingAlignment - 1) * numExperts;
      if (layoutRows > OpChecks.MAX_ELEMENTS) {
        throw OpChecks.fail(op, "tokens·topK + numExperts·(paddingAlignment - 1) = " + layoutRows + " exceeds "
            + OpChecks.MAX_ELEMENTS + "; pass tokensPerExpert");
      }
    }
    int nblocks = Math.max(1, (tokens + 127) / 128);
    // One allocation: the four maps (what DeviceMaps exposes), then the scratch of passes 1-2
    // (per-block counts and flags, a ticket word, the readback words, expert_base); see DeviceBuffer.view.
    long rowmapBytes = 4L * tokens * numExperts;
    long countsOff = align8(rowmapBytes + 12L * layoutRows);
    long flagsOff = countsOff + 4L * nblocks * numExperts;
    long ticketOff = flagsOff + 8L * nblocks;
    long resultOff = ticketOff + 8;
    long baseOff = align8(resultOff + 4L * (3 + numExperts));
    DeviceBuffer backing = alloc.allocate(baseOff + 8L * numExperts, "MoePermuteGpu maps");
    try {
      long b = backing.address();
      // One synchronization: route validation, per-expert counts and the tokens_per_expert check, all
      // before any routed row is written (the output was sized from tokens_per_expert).
      int[] res = prepare0(route.address(), tokens, topK, numExperts, tokensPerExpert, paddingAlignment,
          b + countsOff, b + flagsOff, b + ticketOff, b + baseOff, b + resultOff, b + rowmapBytes + 8L * layoutRows,
          b + rowmapBytes + 4L * layoutRows, b + rowmapBytes, stream);
      if (res[0] != Integer.MAX_VALUE) {
        throw OpChecks.fail(op, "expertRoutemapTopk row " + res[0] + " has an expert id outside -1 or [0, "
            + numExperts + ")");
      }
      if (res[1] != Integer.MAX_VALUE) {
        throw OpChecks.fail(op, "expertRoutemapTopk row " + res[1] + " names the same expert twice");
      }
      if (res[2] != Integer.MAX_VALUE) {
        int e = res[2];
        throw OpChecks.fail(op, "tokensPerExpert[" + e + "] = " + tokensPerExpert[e]
            + " but expertRoutemapTopk routes " + res[3 + e] + " tokens to expert " + e);
      }
      int[] counts = tokensPerExpert;
      if (counts == null) {
        counts = Arrays.copyOfRange(res, 3, 3 + numExperts);
        segments(op, counts, paddingAlignment, offsets);
      }
      int rows = offsets[numExperts];
      long routed = 0;
      for (int c : counts) {
        routed += c;
      }
      DeviceMaps maps = new DeviceMaps(tokens, numExperts, rows, layoutRows, offsets, routed != rows, backing);
      assign0(route.address(), probs.address(), tokens, topK, numExperts, b + baseOff, b + countsOff,
          maps.rowmap.address(), maps.tokenProbUnzipped.address(), maps.sourceRow.address(),
          maps.expertIndices.address(), stream);
      return maps;
    } catch (RuntimeException e) {
      backing.close();
      throw e;
    }
  }

  /** Fills {@code offsets} [E+1] with the padded segment starts of {@code counts}; returns the row total. */
  private static long segments(String op, int[] counts, int paddingAlignment, int[] offsets) {
    long r = 0;
    for (int e = 0; e < counts.length; e++) {
      OpChecks.nonNegative(op, "tokensPerExpert[" + e + "]", counts[e]);
      offsets[e] = (int) r;
      r += ((long) counts[e] + paddingAlignment - 1) / paddingAlignment * paddingAlignment;
      if (r > OpChecks.MAX_ELEMENTS) {
        throw OpChecks.fail(op, "padded row count exceeds " + OpChecks.MAX_ELEMENTS + " at expert " + e);
      }
    }
    offsets[counts.length] = (int) r;
    return r;
  }

  private static long align8(long n) {
    return (n + 7) & ~7L;
  }

  /**
   * {@code moe_permute}'s data movement: a new {@code [R, rowBytes]} buffer holding, for every routed
   * (token, expert), the token's row (bf16, fp32 or fp8 tokens, or their scale rows), and zero padding
   * rows. Reads each source row once and writes it k times (what "unique bytes" counts). Same
   * result as {@link #gather}. Asynchronous on the allocator's stream.
   */
  public static DeviceBuffer permuteRows(DeviceAllocator alloc, DeviceMaps maps, DeviceBuffer src, long rowBytes) {
    String op = "MoePermuteGpu.permuteRows";
    if (rowBytes <= 0) {
      throw OpChecks.fail(op, "rowBytes must be positive, got " + rowBytes);
    }
    fits(op, "src", src, rowBytes * maps.tokens);
    DeviceBuffer out = alloc.allocate(rowBytes * maps.rows, "hiddenStatesUnzipped");
    scatterRows0(src.address(), rowBytes, maps.rowmap.address(), maps.tokens, maps.numExperts,
        maps.sourceRow.address(), maps.hasPadding ? maps.rows : 0, out.address(), alloc.stream().handle());
    return out;
  }

  /**
   * Gathers rows of {@code rowBytes} bytes (bf16, fp32 or fp8 tokens, or their scale rows) into a new
   * {@code [R, rowBytes]} buffer; padding rows are zero. Asynchronous on the allocator's stream.
   */
  public static DeviceBuffer gather(DeviceAllocator alloc, DeviceMaps maps, DeviceBuffer src, long rowBytes) {
    String op = "MoePermuteGpu.gather";
    if (rowBytes <= 0) {
      throw OpChecks.fail(op, "rowBytes must be positive, got " + rowBytes);
    }
    fits(op, "src", src, rowBytes * maps.tokens);
    DeviceBuffer out = alloc.allocate(rowBytes * maps.rows, "hiddenStatesUnzipped");
    gatherRows0(src.address(), maps.tokens, rowBytes, maps.sourceRow.address(), maps.rows, out.address(), true,
        alloc.stream().handle());
    return out;
  }

  /** {@code moe_unpermute}'s outputs on the device. */
  public record DeviceUnpermuted(DeviceBuffer hiddenStates, DeviceBuffer expertProbTopk) implements AutoCloseable {
    @Override
    public void close() {
      hiddenStates.close();
      expertProbTopk.close();
    }
  }

  /**
   * {@code moe_unpermute} with fp32 accumulation, as {@link MoeUnpermute} with
   * {@code useMixPrecision = true}.
   *
   * @param bf16 tokens are bf16 bits (true) or fp32 (false)
   * @param xu {@code [rows, hidden]} permuted (expert output) rows
   * @param route the routemap given to the permute, {@code [tokens, topK]} (for the probs output)
   */
  public static DeviceUnpermuted unpermute(DeviceAllocator alloc, boolean bf16, DeviceBuffer xu, int rows, int hidden,
      DeviceBuffer rowmap, DeviceBuffer route, DeviceBuffer tokenProbUnzipped, int tokens, int topK, int numExperts,
      boolean weightedCombine) {
    String op = "MoePermuteGpu.unpermute";
    OpChecks.nonNegative(op, "rows", rows);
    OpChecks.positive(op, "hidden", hidden);
    OpChecks.nonNegative(op, "tokens", tokens);
    OpChecks.positive(op, "topK", topK);
    OpChecks.inRange(op, "numExperts", numExperts, 1, MoePermute.MAX_EXPERTS);
    int es = bf16 ? 2 : 4;
    fits(op, "hiddenStatesUnzipped", xu, (long) es * OpChecks.elements(op, "hiddenStatesUnzipped", rows, hidden));
    fits(op, "zippedExpertwiseRowmap", rowmap, 4L * OpChecks.elements(op, "zippedExpertwiseRowmap", tokens, numExperts));
    fits(op, "expertRoutemapTopk", route, 4L * OpChecks.elements(op, "expertRoutemapTopk", tokens, topK));
    fits(op, "tokenProbUnzipped", tokenProbUnzipped, 4L * rows);
    long n = OpChecks.elements(op, "hiddenStates [tokens, hidden]", tokens, hidden);
    DeviceBuffer out = alloc.allocate(es * n, "hiddenStates");
    DeviceBuffer probs = alloc.allocate(4L * tokens * topK, "expertProbTopk");
    long s = alloc.stream().handle();
    unpermute0(bf16, xu.address(), rows, hidden, rowmap.address(), tokens, numExperts, tokenProbUnzipped.address(),
        weightedCombine, out.address(), s);
    unpermuteProbs0(route.address(), tokens, topK, numExperts, rowmap.address(), tokenProbUnzipped.address(),
        probs.address(), s);
    return new DeviceUnpermuted(out, probs);
  }

  private static void fits(String op, String name, DeviceBuffer b, long bytes) {
    if (b == null) {
      throw OpChecks.fail(op, name + " must not be null");
    }
    if (b.size() < bytes) {
      throw OpChecks.fail(op, name + " needs " + bytes + " bytes but the device buffer has " + b.size());
    }
  }

  private static native int[] prepare0(long route, long tokens, int topK, int experts, int[] tokensPerExpert,
      int align, long blockCounts, long blockFlags, long ticket, long expertBase, long result, long srcRow,
      long expertOfRow, long probOut, long stream);

  private static native void assign0(long route, long probs, long tokens, int topK, int experts, long expertBase,
      long blockCounts, long rowmap, long probOut, long srcRow, long expertOfRow, long stream);

  private static native void gatherRows0(long src, long srcRows, long rowBytes, long srcRow, long rows, long out,
      boolean zeroMissing, long stream);

  private static native void scatterRows0(long src, long rowBytes, long rowmap, long tokens, int experts, long srcRow,
      long rows, long out, long stream);

  private static native void unpermute0(boolean bf16, long xu, long rows, long hidden, long rowmap, long tokens,
      int experts, long prob, boolean weighted, long out, long stream);

  private static native void unpermuteProbs0(long route, long tokens, int topK, int experts, long rowmap, long prob,
      long out, long stream);
}
