package org.moespark.ops;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * CUDA twin of {@link TeSortChunks} (TransformerEngine's {@code moe_sort_chunks_by_index} and {@code
 * moe_sort_chunks_by_index_with_probs}, spec moe-ops-semantics §9): same arguments and semantics,
 * bit-identical results, tokens on device buffers. {@code split_sizes} and {@code sorted_index} are
 * host arrays (C entries, checked exactly as by the CPU reference: non-negative sizes with sum ≤ N,
 * sorted_index a permutation of 0..C-1; upstream's undefined results for other inputs are rejected);
 * the per-chunk source/destination offsets are computed on the host, uploaded, and a device kernel
 * maps every row by a binary search over the chunk starts. Rows are then moved by one warp per row
 * (16-byte vectors where possible), any hidden size, fp32 or bf16 bits ({@link TeDtype}). Calls are
 * asynchronous on the allocator's stream except for the small upload of the offsets.
 */
public final class TeSortChunksGpu {
  private TeSortChunksGpu() {}

  /**
   * Output of {@link #moeSortChunksByIndexWithProbs}.
   *
   * @param output        {@code [num_tokens, hidden]} rows in chunk-sorted order
   * @param permutedProbs {@code [num_tokens]} fp32 moved the same way
   */
  public record Sorted(DeviceBuffer output, DeviceBuffer permutedProbs) implements AutoCloseable {
    @Override
    public void close() {
      output.close();
      permutedProbs.close();
    }
  }

  /**
   * The destination row of every source row, as {@link TeSortChunks#makeChunkSortMap}.
   *
   * @return a new {@code [numTokens]} int32 buffer
   */
  public static DeviceBuffer makeChunkSortMap(DeviceAllocator alloc, int[] splitSizes, int[] sortedIndex,
      int numTokens) {
    int[] offsets = TeSortChunks.chunkOffsets(splitSizes, sortedIndex, numTokens);
    TeChecks.notNull(alloc, "alloc");
    NativeLibrary.requireAvailable();
    return map(alloc, offsets, splitSizes.length, numTokens);
  }

  /**
   * {@code moe_sort_chunks_by_index(inp, split_sizes, sorted_index)}, as
   * {@link TeSortChunks#moeSortChunksByIndex(float[], int, int, int[], int[])}.
   *
   * @param inp {@code [numTokens, hidden]} on the device
   * @return a new {@code [numTokens, hidden]} buffer of {@code dtype}
   */
  public static DeviceBuffer moeSortChunksByIndex(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numTokens,
      int hidden, int[] splitSizes, int[] sortedIndex) {
    DeviceBuffer[] r = sort(alloc, dtype, inp, numTokens, hidden, null, splitSizes, sortedIndex);
    return r[0];
  }

  /**
   * {@code moe_sort_chunks_by_index_with_probs(inp, probs, split_sizes, sorted_index)}, as
   * {@link TeSortChunks#moeSortChunksByIndexWithProbs(float[], int, int, float[], int[], int[])}.
   *
   * @param probs {@code [numTokens]} fp32 on the device
   */
  public static Sorted moeSortChunksByIndexWithProbs(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp,
      int numTokens, int hidden, DeviceBuffer probs, int[] splitSizes, int[] sortedIndex) {
    TeChecks.notNull(probs, "probs");
    DeviceBuffer[] r = sort(alloc, dtype, inp, numTokens, hidden, probs, splitSizes, sortedIndex);
    return new Sorted(r[0], r[1]);
  }

  // ---------------------------------------------------------------------------------------------

  private static DeviceBuffer[] sort(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numTokens, int hidden,
      DeviceBuffer probs, int[] splitSizes, int[] sortedIndex) {
    TeChecks.notNull(dtype, "dtype");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.nonNegative("hidden", hidden);
    int[] offsets = TeSortChunks.chunkOffsets(splitSizes, sortedIndex, numTokens);
    long rowBytes = (long) hidden * dtype.bytes;
    TeGpuSupport.fits("inp [" + numTokens + ", " + hidden + "] " + dtype.label, inp, rowBytes * numTokens);
    if (probs != null) {
      TeGpuSupport.fits("probs [" + numTokens + "]", probs, 4L * numTokens);
    }
    TeChecks.notNull(alloc, "alloc");
    NativeLibrary.requireAvailable();
    DeviceBuffer out = null;
    DeviceBuffer outProbs = null;
    try (DeviceBuffer map = map(alloc, offsets, splitSizes.length, numTokens)) {
      out = alloc.allocate(rowBytes * numTokens, "TeSortChunksGpu output");
      if (probs != null) {
        outProbs = alloc.allocate(4L * numTokens, "TeSortChunksGpu permuted probs");
      }
      sortRows0(inp.address(), numTokens, rowBytes, map.address(), probs == null ? 0 : probs.address(), out.address(),
          outProbs == null ? 0 : outProbs.address(), alloc.stream().handle());
      return new DeviceBuffer[] {out, outProbs};
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, out, outProbs);
    }
  }

  private static DeviceBuffer map(DeviceAllocator alloc, int[] offsets, int chunks, int numTokens) {
    DeviceBuffer map = alloc.allocate(4L * numTokens, "TeSortChunksGpu map");
    try (DeviceBuffer dOff = alloc.upload(offsets, "TeSortChunksGpu chunk offsets")) {
      chunkSortMap0(dOff.address(), dOff.address() + 4L * (chunks + 1), chunks, numTokens, map.address(),
          alloc.stream().handle());
      return map;
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, map);
    }
  }

  private static native void chunkSortMap0(long srcStart, long dstStart, int chunks, long tokens, long map,
      long stream);

  private static native void sortRows0(long inp, long tokens, long rowBytes, long map, long probs, long out,
      long outProbs, long stream);
}
