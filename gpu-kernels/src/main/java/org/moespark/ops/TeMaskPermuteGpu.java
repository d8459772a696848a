package org.moespark.ops;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * CUDA twin of {@link TeMaskPermute} (TransformerEngine's mask-map permutation, spec
 * moe-ops-semantics §8): {@code make_row_id_map}, {@code moe_permute}, {@code moe_permute_with_probs},
 * {@code moe_permute_and_pad_with_probs} and {@code moe_unpermute}, with the same arguments on device
 * buffers and bit-identical results. Layouts, the row_id_map format, the zero-prob convention and the
 * documented differences from upstream are those of {@link TeMaskPermute}'s class doc; the unused
 * row_id_map columns are -1 as in the CPU reference, so the maps are identical to it.
 *
 * <h2>Device work</h2>
 * Every call runs on the allocator's stream and returns buffers the caller owns. {@code
 * routing_map} is {@code [N, E]} bytes (torch.bool layout), probs fp32, maps int32, tokens fp32 or
 * bf16 bits ({@link TeDtype}), any hidden size (16-byte vectors where row size and addresses allow,
 * narrower otherwise).
 * <ul>
 *   <li>row_id_map: per block of 32 tokens a 32-bit word per expert marks the routed tokens; a
 *       warp-per-expert shuffle scan over blocks and an expert prefix give each (t, e) its row
 *       {@code Σ_{j<e} count[j] + (tokens before t routed to e)} — integer sums in a fixed order,
 *       no atomics that change results; one warp per token then writes its row in descending expert
 *       order.</li>
 *   <li>permute: one warp per source token reads its row once and writes every routed copy (zeros
 *       for a ±0 prob); padding rows are zeroed by a separate pass.</li>
 *   <li>unpermute: one warp per output token, pairs in map order, fp32 {@code __fmul_rn}/{@code
 *       __fadd_rn} from +0 (never FMA), bf16 rounded once at the end.</li>
 * </ul>
 * The data checks of the CPU reference (routing_map bytes other than 0/1, {@code num_out_tokens} or
 * {@code tokens_per_expert} disagreeing with the map, malformed row_id_maps) run on the device; the
 * call synchronizes the stream once to read the verdict and throws the CPU reference's
 * {@link IllegalArgumentException} (after freeing its outputs). Permute calls synchronize once
 * anyway: the output size depends on the routed count, which is checked before any row is written.
 */
public final class TeMaskPermuteGpu {
  private TeMaskPermuteGpu() {}

  /**
   * Output of {@link #moePermute} / {@link #moePermuteWithProbs}.
   *
   * @param output        {@code [num_out_tokens, hidden]} permuted tokens
   * @param permutedProbs {@code [num_out_tokens]} fp32, or null for {@link #moePermute}
   * @param rowIdMap      {@code [num_tokens, 2E + 1]} int32
   */
  public record Permuted(DeviceBuffer output, DeviceBuffer permutedProbs, DeviceBuffer rowIdMap)
      implements AutoCloseable {
    @Override
    public void close() {
      output.close();
      if (permutedProbs != null) {
        permutedProbs.close();
      }
      rowIdMap.close();
    }
  }

  /**
   * Output of {@link #moePermuteAndPadWithProbs}; see {@link TeMaskPermute.PaddedPermuted}.
   *
   * @param padOffsets            host {@code [E]}, or null when no expert needed padding
   * @param targetTokensPerExpert host {@code [E]}
   */
  public record Padded(DeviceBuffer output, DeviceBuffer permutedProbs, DeviceBuffer rowIdMap, int[] padOffsets,
      int[] targetTokensPerExpert) implements AutoCloseable {
    @Override
    public void close() {
      output.close();
      permutedProbs.close();
      rowIdMap.close();
    }
  }

  /**
   * TE {@code make_row_id_map}, as {@link TeMaskPermute#makeRowIdMap}.
   *
   * @param routingMap {@code [numTokens, numExperts]} bytes of 0/1 on the device
   * @return a new {@code [numTokens, 2 * numExperts + 1]} int32 buffer
   */
  public static DeviceBuffer makeRowIdMap(DeviceAllocator alloc, DeviceBuffer routingMap, int numTokens,
      int numExperts) {
    checkRoutingShape(numTokens, numExperts);
    checkRoutingBuffer(routingMap, numTokens, numExperts);
    return build(alloc, routingMap, numTokens, numExperts).map;
  }

  /**
   * {@code moe_permute(inp, routing_map, num_out_tokens)}, as
   * {@link TeMaskPermute#moePermute(float[], int, int, byte[], int, int)}.
   *
   * @param numOutTokens must equal {@code Σ routing_map}
   */
  public static Permuted moePermute(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numTokens, int hidden,
      DeviceBuffer routingMap, int numExperts, int numOutTokens) {
    return permute(alloc, dtype, inp, numTokens, hidden, null, routingMap, numExperts, numOutTokens);
  }

  /**
   * {@code moe_permute_with_probs(inp, probs, routing_map, num_out_tokens)}, as
   * {@link TeMaskPermute#moePermuteWithProbs(float[], int, int, float[], byte[], int, int)}: a routed
   * slot whose prob is ±0.0 gets a zero row (upstream convention).
   *
   * @param probs {@code [numTokens, numExperts]} fp32 on the device
   */
  public static Permuted moePermuteWithProbs(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numTokens,
      int hidden, DeviceBuffer probs, DeviceBuffer routingMap, int numExperts, int numOutTokens) {
    TeChecks.notNull(probs, "probs");
    return permute(alloc, dtype, inp, numTokens, hidden, probs, routingMap, numExperts, numOutTokens);
  }

  /**
   * {@code moe_permute_and_pad_with_probs(inp, probs, routing_map, tokens_per_expert, align_size)}, as
   * {@link TeMaskPermute#moePermuteAndPadWithProbs(float[], int, int, float[], byte[], int, int[], int)}.
   *
   * @param tokensPerExpert host {@code [numExperts]}, must equal {@code routing_map.sum(dim=0)}
   *                        (checked against the device counts before any row is written)
   * @param alignSize       ≥ 1, in rows
   */
  public static Padded moePermuteAndPadWithProbs(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp,
      int numTokens, int hidden, DeviceBuffer probs, DeviceBuffer routingMap, int numExperts, int[] tokensPerExpert,
      int alignSize) {
    TeChecks.notNull(dtype, "dtype");
    TeChecks.notNull(tokensPerExpert, "tokens_per_expert");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.nonNegative("hidden", hidden);
    TeChecks.positive("align_size", alignSize);
    checkRoutingShape(numTokens, numExperts);
    TeChecks.length("tokens_per_expert", tokensPerExpert.length, numExperts, "[" + numExperts + "]");
    TeGpuSupport.fits("inp [" + numTokens + ", " + hidden + "] " + dtype.label, inp,
        TeGpuSupport.elements(numTokens, hidden) * dtype.bytes);
    checkRoutingBuffer(routingMap, numTokens, numExperts);
    TeChecks.notNull(probs, "probs");
    TeGpuSupport.fits("probs [" + numTokens + ", " + numExperts + "] like routing_map", probs,
        4L * TeGpuSupport.elements(numTokens, numExperts));
    Built b = build(alloc, routingMap, numTokens, numExperts);
    DeviceBuffer out = null;
    DeviceBuffer outProbs = null;
    try {
      for (int e = 0; e < numExperts; e++) {
        if (tokensPerExpert[e] != b.counts[e]) {
          throw new IllegalArgumentException("tokens_per_expert[" + e + "] = " + tokensPerExpert[e]
              + " but routing_map routes " + b.counts[e] + " tokens to expert " + e
              + " (tokens_per_expert must be routing_map.sum(dim=0))");
        }
      }
      int[] target = new int[numExperts];
      int[] pads = new int[3 * numExperts]; // pad_offsets | first padding row | padding rows, per expert
      long total = 0;
      long pad = 0;
      boolean padded = false;
      for (int e = 0; e < numExperts; e++) {
        long c = b.counts[e];
        long t = (c + alignSize - 1) / alignSize * alignSize;
        target[e] = TeChecks.int32("target_tokens_per_expert[" + e + "]", t);
        pads[e] = TeChecks.int32("pad_offsets[" + e + "]", pad);
        pads[numExperts + e] = TeChecks.int32("first padding row of expert " + e, total + c);
        pads[2 * numExperts + e] = (int) (t - c);
        pad += t - c;
        total += t;
        padded |= t != c;
      }
      int numOut = TeChecks.int32("sum(target_tokens_per_expert)", total);
      long rowBytes = (long) hidden * dtype.bytes;
      out = alloc.allocate(rowBytes * numOut, "TeMaskPermuteGpu padded output");
      outProbs = alloc.allocate(4L * numOut, "TeMaskPermuteGpu padded probs");
      long stream = alloc.stream().handle();
      if (padded) {
        try (DeviceBuffer dPads = alloc.upload(pads, "TeMaskPermuteGpu pad offsets")) {
          long p = dPads.address();
          permuteRows0(inp.address(), numTokens, rowBytes, b.map.address(), numExperts, probs.address(), p,
              p + 4L * numExperts, p + 8L * numExperts, out.address(), outProbs.address(), stream);
        }
      } else {
        permuteRows0(inp.address(), numTokens, rowBytes, b.map.address(), numExperts, probs.address(), 0, 0, 0,
            out.address(), outProbs.address(), stream);
      }
      int[] offsets = padded ? java.util.Arrays.copyOf(pads, numExperts) : null;
      return new Padded(out, outProbs, b.map, offsets, target);
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, out, outProbs, b.map);
    }
  }

  /**
   * {@code moe_unpermute(inp, row_id_map, merging_probs, restore_shape=(numTokens, hidden),
   * map_type="mask", pad_offsets)}, as
   * {@link TeMaskPermute#moeUnpermute(float[], int, int, int[], int, float[], int, int[])} (fp32) and
   * its bf16 twin (fp32 accumulation, one RNE rounding at the end).
   *
   * @param inp          {@code [numRows, hidden]} on the device
   * @param rowIdMap     {@code [numTokens, 2E + 1]} int32 on the device
   * @param mergingProbs {@code [numTokens, numExperts]} fp32 on the device, or null for a plain sum
   * @param padOffsets   host {@code [numExperts]} from {@link #moePermuteAndPadWithProbs}, or null
   * @return a new {@code [numTokens, hidden]} buffer of {@code dtype}
   */
  public static DeviceBuffer moeUnpermute(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numRows,
      int hidden, DeviceBuffer rowIdMap, int numExperts, DeviceBuffer mergingProbs, int numTokens, int[] padOffsets) {
    TeChecks.notNull(dtype, "dtype");
    TeChecks.nonNegative("num_rows (rows of inp)", numRows);
    TeChecks.nonNegative("hidden", hidden);
    TeChecks.nonNegative("num_tokens (restore_shape[0])", numTokens);
    TeChecks.positive("num_experts", numExperts);
    int width = TeChecks.int32("2 * num_experts + 1", 2L * numExperts + 1);
    if (padOffsets != null) {
      TeChecks.length("pad_offsets", padOffsets.length, numExperts, "[" + numExperts + "]");
      for (int e = 0; e < numExperts; e++) {
        TeChecks.nonNegative("pad_offsets[" + e + "]", padOffsets[e]);
      }
    }
    TeGpuSupport.fits("inp [" + numRows + ", " + hidden + "] " + dtype.label, inp,
        TeGpuSupport.elements(numRows, hidden) * dtype.bytes);
    TeGpuSupport.fits("row_id_map [" + numTokens + ", " + width + "] for num_tokens = restore_shape[0]", rowIdMap,
        4L * TeGpuSupport.elements(numTokens, width));
    if (mergingProbs != null) {
      TeGpuSupport.fits("merging_probs [" + numTokens + ", " + numExperts + "]", mergingProbs,
          4L * TeGpuSupport.elements(numTokens, numExperts));
    }
    TeChecks.notNull(alloc, "alloc");
    NativeLibrary.requireAvailable();
    DeviceBuffer out = null;
    DeviceBuffer dPad = null;
    try (DeviceBuffer flag = TeGpuSupport.flag(alloc, "TeMaskPermuteGpu unpermute flag")) {
      if (padOffsets != null) {
        dPad = alloc.upload(padOffsets, "TeMaskPermuteGpu pad_offsets");
      }
      out = alloc.allocate(TeGpuSupport.elements(numTokens, hidden) * dtype.bytes, "TeMaskPermuteGpu unpermuted");
      unpermute0(dtype == TeDtype.BF16, inp.address(), numRows, hidden, rowIdMap.address(), numExperts,
          mergingProbs == null ? 0 : mergingProbs.address(), numTokens, dPad == null ? 0 : dPad.address(),
          out.address(), flag.address(), alloc.stream().handle());
      int bad = TeGpuSupport.readFlag(flag);
      if (bad != TeGpuSupport.NONE) {
        int[] row = rowIdMap.view(4L * bad * width, 4L * width).toInts(width);
        throw badMapRow(row, bad, numExperts, padOffsets, numRows);
      }
      if (dPad != null) {
        dPad.close();
      }
      return out;
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, out, dPad);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private static Permuted permute(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numTokens, int hidden,
      DeviceBuffer probs, DeviceBuffer routingMap, int numExperts, int numOutTokens) {
    TeChecks.notNull(dtype, "dtype");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.nonNegative("hidden", hidden);
    checkRoutingShape(numTokens, numExperts);
    TeChecks.nonNegative("num_out_tokens", numOutTokens);
    TeGpuSupport.fits("inp [" + numTokens + ", " + hidden + "] " + dtype.label, inp,
        TeGpuSupport.elements(numTokens, hidden) * dtype.bytes);
    checkRoutingBuffer(routingMap, numTokens, numExperts);
    if (probs != null) {
      TeGpuSupport.fits("probs [" + numTokens + ", " + numExperts + "] like routing_map", probs,
          4L * TeGpuSupport.elements(numTokens, numExperts));
    }
    Built b = build(alloc, routingMap, numTokens, numExperts);
    DeviceBuffer out = null;
    DeviceBuffer outProbs = null;
    try {
      if (numOutTokens != b.total) {
        throw new IllegalArgumentException("num_out_tokens = " + numOutTokens + " but routing_map routes " + b.total
            + " (token, expert) pairs; the mask-map permute needs num_out_tokens == routing_map.sum()");
      }
      long rowBytes = (long) hidden * dtype.bytes;
      out = alloc.allocate(rowBytes * numOutTokens, "TeMaskPermuteGpu output");
      if (probs != null) {
        outProbs = alloc.allocate(4L * numOutTokens, "TeMaskPermuteGpu permuted probs");
      }
      permuteRows0(inp.address(), numTokens, rowBytes, b.map.address(), numExperts,
          probs == null ? 0 : probs.address(), 0, 0, 0, out.address(), outProbs == null ? 0 : outProbs.address(),
          alloc.stream().handle());
      return new Permuted(out, outProbs, b.map);
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, out, outProbs, b.map);
    }
  }

  private record Built(DeviceBuffer map, int[] counts, long total) {}

  /** Builds the map on the device and reads back (one synchronization) the counts and the 0/1 check. */
  private static Built build(DeviceAllocator alloc, DeviceBuffer routingMap, int numTokens, int numExperts) {
    TeChecks.notNull(alloc, "alloc");
    NativeLibrary.requireAvailable();
    long nblocks = (numTokens + 31L) / 32;
    long width = 2L * numExperts + 1;
    long countsOff = 16;
    long baseOff = TeGpuSupport.align256(countsOff + 4L * numExperts);
    long bitsOff = baseOff + TeGpuSupport.align256(8L * numExperts);
    long prefixOff = bitsOff + TeGpuSupport.align256(4L * nblocks * numExperts);
    long scratchBytes = prefixOff + 4L * nblocks * numExperts;
    DeviceBuffer map = alloc.allocate(4L * numTokens * width, "TeMaskPermuteGpu row_id_map");
    try (DeviceBuffer scratch = alloc.allocate(scratchBytes, "TeMaskPermuteGpu map scratch")) {
      long s = scratch.address();
      rowIdMap0(routingMap.address(), numTokens, numExperts, s + bitsOff, s + prefixOff, s + countsOff, s + baseOff, s,
          map.address(), alloc.stream().handle());
      int[] head = scratch.toInts(4 + numExperts);
      long bad = (head[0] & 0xFFFF_FFFFL) | ((long) head[1] << 32);
      long total = (head[2] & 0xFFFF_FFFFL) | ((long) head[3] << 32);
      if (bad != Long.MAX_VALUE) {
        byte v = routingMap.view(bad, 1).toBytes(1)[0];
        throw new IllegalArgumentException("routing_map[" + (bad / numExperts) + "][" + (bad % numExperts) + "] = " + v
            + ", expected 0 (not routed) or 1 (routed)");
      }
      TeChecks.int32("sum(routing_map)", total);
      return new Built(map, java.util.Arrays.copyOfRange(head, 4, 4 + numExperts), total);
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, map);
    }
  }

  private static void checkRoutingShape(int numTokens, int numExperts) {
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.positive("num_experts", numExperts);
    TeChecks.int32("2 * num_experts + 1", 2L * numExperts + 1);
  }

  private static void checkRoutingBuffer(DeviceBuffer routingMap, int numTokens, int numExperts) {
    TeGpuSupport.fits("routing_map [" + numTokens + ", " + numExperts + "]", routingMap,
        TeGpuSupport.elements(numTokens, numExperts));
  }

  /** The CPU reference's structural message for the first malformed row (token {@code t}). */
  private static IllegalArgumentException badMapRow(int[] map, int t, int numExperts, int[] padOffsets, int numRows) {
    int n = map[2 * numExperts];
    if (n < 0 || n > numExperts) {
      return new IllegalArgumentException("row_id_map[" + t + "][" + (2 * numExperts) + "] (n_routed) = " + n
          + ", expected a count in [0, " + numExperts + "]");
    }
    for (int i = 0; i < n; i++) {
      int r = map[i];
      int e = map[numExperts + i];
      if (e < 0 || e >= numExperts) {
        return new IllegalArgumentException("row_id_map[" + t + "][" + (numExperts + i) + "] (expert) = " + e
            + ", expected an expert in [0, " + numExperts + ")");
      }
      if (i > 0 && e >= map[numExperts + i - 1]) {
        return new IllegalArgumentException("row_id_map[" + t + "]: expert ids " + map[numExperts + i - 1] + ", " + e
            + " at columns " + (numExperts + i - 1) + ", " + (numExperts + i) + " are not strictly descending");
      }
      long padded = (long) r + (padOffsets == null ? 0 : padOffsets[e]);
      if (r < 0 || padded >= numRows) {
        return new IllegalArgumentException("row_id_map[" + t + "][" + i + "] = " + r
            + (padOffsets == null ? "" : " (+ pad_offsets[" + e + "] = " + padded + ")")
            + ", expected a row in [0, " + numRows + ") of inp");
      }
    }
    return new IllegalArgumentException("row_id_map[" + t + "] is malformed");
  }

  private static native void rowIdMap0(long routingMap, long tokens, int experts, long bits, long prefix, long counts,
      long base, long status, long rowIdMap, long stream);

  private static native void permuteRows0(long inp, long tokens, long rowBytes, long rowIdMap, int experts, long probs,
      long padOffsets, long padStart, long padCount, long out, long permutedProbs, long stream);

  private static native void unpermute0(boolean bf16, long inp, long numRows, long hidden, long rowIdMap, int experts,
      long mergingProbs, long tokens, long padOffsets, long out, long bad, long stream);
}
