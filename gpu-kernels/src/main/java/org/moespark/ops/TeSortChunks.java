package org.moespark.ops;

/**
 * TransformerEngine's {@code moe_sort_chunks_by_index(inp, split_sizes, sorted_index)} and {@code
 * moe_sort_chunks_by_index_with_probs(inp, probs, split_sizes, sorted_index)} (TE {@code
 * pytorch/permutation.py}, Triton {@code _make_chunk_sort_map_kernel} / {@code
 * _sort_chunks_by_map_kernel}; spec moe-ops-semantics §9). Public API and exact CPU reference.
 *
 * <p>{@code inp [num_tokens, hidden]} is split along rows into consecutive chunks of {@code
 * split_sizes[0..C)} rows; the output is the concatenation {@code chunk[sorted_index[0]],
 * chunk[sorted_index[1]], …}. Rows at or beyond {@code Σ split_sizes} stay where they are. The
 * typical use is expert-parallel / tensor-parallel all-to-all regrouping, e.g. {@code sorted_index =
 * arange(E·tp).reshape(tp, E).T.ravel()}; sorting again with the inverse permutation and the
 * reordered split sizes restores the input bit for bit.
 *
 * <p>Differences from upstream (intended behaviour): upstream's result is undefined when {@code
 * sorted_index} is not a permutation of {@code 0..C-1} (an {@code argmax} over an all-false mask
 * picks chunk position 0) and it writes out of bounds when {@code Σ split_sizes > num_tokens}; both are
 * rejected here, as are negative split sizes. Rows are moved as raw bits (fp32 or bf16).
 */
public final class TeSortChunks {
  private TeSortChunks() {}

  /**
   * Output of {@code moe_sort_chunks_by_index_with_probs}.
   *
   * @param output        {@code [num_tokens, hidden]} rows in chunk-sorted order
   * @param permutedProbs {@code [num_tokens]} probs moved the same way
   */
  public record Sorted<T>(T output, float[] permutedProbs) {}

  /**
   * The destination row of every source row (TE {@code make_chunk_sort_map}): for a source row p in
   * chunk c at offset o, {@code dst = Σ_{j<q} split_sizes[sorted_index[j]] + o} where q is the position
   * of c in sorted_index; rows {@code p ≥ Σ split_sizes} map to themselves.
   *
   * @param splitSizes  {@code [C]} chunk sizes in rows, each ≥ 0, with sum ≤ numTokens
   * @param sortedIndex {@code [C]} a permutation of {@code 0..C-1}
   * @param numTokens   N ≥ 0
   * @return {@code [numTokens]} destination rows (a permutation of {@code 0..N-1})
   */
  public static int[] makeChunkSortMap(int[] splitSizes, int[] sortedIndex, int numTokens) {
    int[] off = chunkOffsets(splitSizes, sortedIndex, numTokens);
    int chunks = splitSizes.length;
    int[] map = new int[numTokens];
    int p = 0;
    for (int c = 0; c < chunks; c++) {
      for (int o = 0; o < splitSizes[c]; o++) {
        map[p++] = off[chunks + 1 + c] + o;
      }
    }
    for (; p < numTokens; p++) {
      map[p] = p;
    }
    return map;
  }

  /**
   * Checks the chunk arguments (as {@link #makeChunkSortMap}) and returns
   * {@code [src_start (C + 1) | dst_start (C)]}: the first input row of each chunk (and Σ split_sizes),
   * then the first output row of each chunk. Shared with the CUDA twin, which uploads it.
   */
  static int[] chunkOffsets(int[] splitSizes, int[] sortedIndex, int numTokens) {
    TeChecks.notNull(splitSizes, "split_sizes");
    TeChecks.notNull(sortedIndex, "sorted_index");
    TeChecks.nonNegative("num_tokens", numTokens);
    int chunks = splitSizes.length;
    TeChecks.length("sorted_index", sortedIndex.length, chunks, "[" + chunks + "] like split_sizes");
    int[] off = new int[2 * chunks + 1];
    long total = 0;
    for (int c = 0; c < chunks; c++) {
      TeChecks.nonNegative("split_sizes[" + c + "]", splitSizes[c]);
      total += splitSizes[c];
      off[c + 1] = (int) Math.min(total, Integer.MAX_VALUE);
    }
    if (total > numTokens) {
      throw new IllegalArgumentException(
          "sum(split_sizes) = " + total + " exceeds num_tokens = " + numTokens + " (rows of inp)");
    }
    int[] position = new int[chunks];
    java.util.Arrays.fill(position, -1);
    for (int q = 0; q < chunks; q++) {
      int c = sortedIndex[q];
      if (c < 0 || c >= chunks) {
        throw new IllegalArgumentException(
            "sorted_index[" + q + "] = " + c + ", expected a chunk index in [0, " + chunks + ")");
      }
      if (position[c] >= 0) {
        throw new IllegalArgumentException("sorted_index[" + q + "] = " + c + " repeats sorted_index[" + position[c]
            + "]; sorted_index must be a permutation of 0.." + (chunks - 1));
      }
      position[c] = q;
    }
    int acc = 0;
    for (int q = 0; q < chunks; q++) {
      off[chunks + 1 + sortedIndex[q]] = acc;
      acc += splitSizes[sortedIndex[q]];
    }
    return off;
  }

  /**
   * {@code moe_sort_chunks_by_index(inp, split_sizes, sorted_index)} for fp32 tokens.
   *
   * @param inp         {@code [numTokens, hidden]}
   * @param numTokens   N ≥ 0
   * @param hidden      H ≥ 0 (any value)
   * @param splitSizes  {@code [C]} chunk sizes, sum ≤ N
   * @param sortedIndex {@code [C]} permutation of {@code 0..C-1}
   * @return {@code [numTokens, hidden]}
   */
  public static float[] moeSortChunksByIndex(float[] inp, int numTokens, int hidden, int[] splitSizes,
      int[] sortedIndex) {
    return sort(inp, numTokens, hidden, null, splitSizes, sortedIndex).output();
  }

  /** bf16 twin of {@link #moeSortChunksByIndex(float[], int, int, int[], int[])}. */
  public static short[] moeSortChunksByIndex(short[] inp, int numTokens, int hidden, int[] splitSizes,
      int[] sortedIndex) {
    return sort(inp, numTokens, hidden, null, splitSizes, sortedIndex).output();
  }

  /**
   * {@code moe_sort_chunks_by_index_with_probs(inp, probs, split_sizes, sorted_index)} for fp32
   * tokens: as {@link #moeSortChunksByIndex(float[], int, int, int[], int[])}, and the 1-D {@code
   * probs [numTokens]} are moved the same way.
   */
  public static Sorted<float[]> moeSortChunksByIndexWithProbs(float[] inp, int numTokens, int hidden,
      float[] probs, int[] splitSizes, int[] sortedIndex) {
    TeChecks.notNull(probs, "probs");
    return sort(inp, numTokens, hidden, probs, splitSizes, sortedIndex);
  }

  /** bf16 twin of {@link #moeSortChunksByIndexWithProbs(float[], int, int, float[], int[], int[])}. */
  public static Sorted<short[]> moeSortChunksByIndexWithProbs(short[] inp, int numTokens, int hidden,
      float[] probs, int[] splitSizes, int[] sortedIndex) {
    TeChecks.notNull(probs, "probs");
    return sort(inp, numTokens, hidden, probs, splitSizes, sortedIndex);
  }

  private static <T> Sorted<T> sort(T inp, int numTokens, int hidden, float[] probs, int[] splitSizes,
      int[] sortedIndex) {
    TeChecks.notNull(inp, "inp");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.nonNegative("hidden", hidden);
    int len = TeChecks.elements("inp", numTokens, hidden);
    TeChecks.length("inp", java.lang.reflect.Array.getLength(inp), len, "[" + numTokens + ", " + hidden + "]");
    if (probs != null) {
      TeChecks.length("probs", probs.length, numTokens, "[" + numTokens + "]");
    }
    int[] map = makeChunkSortMap(splitSizes, sortedIndex, numTokens);
    T out = TeRows.zeros(inp, len);
    float[] permutedProbs = probs == null ? null : new float[numTokens];
    for (int p = 0; p < numTokens; p++) {
      TeRows.copyRow(inp, p, out, map[p], hidden);
      if (probs != null) {
        permutedProbs[map[p]] = probs[p];
      }
    }
    return new Sorted<>(out, permutedProbs);
  }
}
