package org.moespark.ops;

import java.util.Arrays;
import org.moespark.formats.Bf16;

/**
 * TransformerEngine's <em>index-map</em> token permutation: {@code moe_permute(inp, routing_map,
 * num_out_tokens, max_token_num=-1, map_type="index")} and {@code moe_unpermute(inp, row_id_map,
 * merging_probs, map_type="index")} (TE {@code pytorch/permutation.py}, {@code
 * pytorch/csrc/extensions/permutation.cpp}, {@code common/permutation/permutation.cu}; spec
 * moe-ops-semantics §7). This class is the public API and the exact CPU reference; a CUDA twin takes
 * the same arguments.
 *
 * <h2>Layouts</h2>
 * All tensors are flat row-major arrays whose shape is passed explicitly:
 * <ul>
 *   <li>tokens {@code inp [num_tokens, hidden]}: fp32 ({@code float[]}) or bf16 ({@code short[]}
 *       holding bf16 bit patterns);</li>
 *   <li>{@code indices [num_tokens, topK]} int32: the expert id of every (token, slot); negative ids
 *       (-1 = empty slot) are allowed;</li>
 *   <li>{@code row_id_map [topK * num_tokens]} int32, <b>k-major</b>: entry {@code k * num_tokens + t}
 *       is the permuted row holding token t's slot k, or -1 when that slot was dropped;</li>
 *   <li>{@code probs [num_tokens, topK]} fp32, in the slot order of {@code indices}.</li>
 * </ul>
 *
 * <h2>Ordering</h2>
 * Permuted rows are ordered by expert id <em>as an unsigned 32-bit key</em> (upstream sorts with cub
 * radix sort on keys reinterpreted as uint32, fix b7323b1ec / TE issue #2908), stably by flattened
 * position {@code t * topK + k}: expert ascending, then token ascending, then slot ascending.
 * Consequently -1 and every other negative id sort <b>after</b> all real experts (among themselves by
 * their unsigned value, e.g. -2 before -1). With {@code num_out_tokens} smaller than {@code
 * num_tokens * topK} only the first {@code num_out_tokens} entries of this global order get rows: the
 * op drops the assignments with the largest keys (the sentinels first, then the largest expert ids);
 * it is not a per-expert capacity. Pass {@code num_out_tokens} = number of non-negative slots to drop
 * exactly the sentinels.
 *
 * <h2>Differences from upstream (intended behaviour, spec §16)</h2>
 * <ul>
 *   <li>All index arithmetic is 64-bit; {@code num_tokens * topK} must fit int32 (upstream's row ids
 *       and sort length are int32) and is rejected otherwise instead of overflowing (§7.4, #2908).</li>
 *   <li>{@code num_out_tokens} must lie in {@code [0, num_tokens * topK]} (0 means no dropping);
 *       negative values (the pre-#2876 "-1" default) and values above the expanded count (which
 *       upstream would fill with uninitialised rows) are rejected.</li>
 *   <li>A token listing the same non-negative expert twice is rejected (upstream would permute it
 *       twice; routers never produce it). Repeated negative sentinels are fine.</li>
 *   <li>Empty input ({@code num_tokens * hidden == 0}): upstream returns {@code inp} and an empty
 *       row_id_map; here the row_id_map is still computed (it is well defined) and the permuted
 *       tensor has {@code num_out_tokens} rows of width {@code hidden}.</li>
 *   <li>fp8 tokens are not offered here; upstream's fp8 unpermute without probs divides by topK
 *       (§16.6), which a future fp8 overload must not copy.</li>
 * </ul>
 */
public final class TePermute {
  private TePermute() {}

  /**
   * Accumulation precision of the bf16 unpermute.
   */
  public enum Accumulation {
    /**
     * Upstream TE: compute in the input dtype. Every prob is first rounded to bf16, every product and
     * every partial sum is rounded to bf16 (RNE), slot order 0..topK-1. This reproduces TE's
     * forward bit for bit, including its precision loss (TE issue #1336).
     */
    INPUT_DTYPE,
    /**
     * "Accurate" mode: fp32 products with the fp32 probs and fp32 partial sums (each operation
     * rounded separately, no fused multiply-add), slot order 0..topK-1, one RNE rounding to bf16 at
     * the end.
     */
    FP32
  }

  /**
   * Output of {@code moe_permute(..., map_type="index")}.
   *
   * @param permuted      {@code [numOutTokens, hidden]} tokens in permuted order (same array type as
   *                      the input)
   * @param rowIdMap      {@code [topK * numTokens]} k-major map (see class doc)
   * @param numOutTokens  the row count actually produced ({@code num_tokens * topK} when 0 was passed)
   */
  public record Result<T>(T permuted, int[] rowIdMap, int numOutTokens) {}

  /**
   * The index-map row_id_map alone (what TE's {@code moe_permute_topK_row_map} kernel writes).
   *
   * @param indices      {@code [numTokens, topK]} expert ids; negative = empty slot
   * @param numTokens    N ≥ 0
   * @param topK         slots per token, ≥ 1
   * @param numOutTokens rows to keep, in {@code [0, numTokens * topK]}; 0 keeps all
   * @return {@code [topK * numTokens]} k-major map, entries in {@code [0, numOut)} or -1
   */
  public static int[] makeRowIdMap(int[] indices, int numTokens, int topK, int numOutTokens) {
    int expanded = checkIndices(indices, numTokens, topK);
    int numOut = resolveNumOut(numOutTokens, expanded);
    return rowIdMap(indices, numTokens, topK, expanded, numOut);
  }

  /**
   * {@code moe_permute(inp, indices, num_out_tokens, map_type="index")} for fp32 tokens.
   *
   * @param inp          {@code [numTokens, hidden]} fp32 tokens; hidden must be a multiple of 4
   * @param numTokens    N ≥ 0
   * @param hidden       H ≥ 0
   * @param indices      {@code [numTokens, topK]} expert ids (negative = empty slot)
   * @param topK         ≥ 1
   * @param numOutTokens rows to keep in {@code [0, numTokens * topK]}; 0 keeps all
   * @return the permuted tokens (bit-exact row copies) and the row_id_map
   */
  public static Result<float[]> moePermute(float[] inp, int numTokens, int hidden, int[] indices, int topK,
      int numOutTokens) {
    return permute(inp, numTokens, hidden, indices, topK, numOutTokens, 4, "fp32");
  }

  /**
   * {@code moe_permute(inp, indices, num_out_tokens, map_type="index")} for bf16 tokens (bit patterns);
   * hidden must be a multiple of 8. See {@link #moePermute(float[], int, int, int[], int, int)}.
   */
  public static Result<short[]> moePermute(short[] inp, int numTokens, int hidden, int[] indices, int topK,
      int numOutTokens) {
    return permute(inp, numTokens, hidden, indices, topK, numOutTokens, 2, "bf16");
  }

  /**
   * TE's unpermute kernel ({@code tex.moe_unpermute_fwd}; also the backward of permute): for every
   * token t, {@code out[t] = Σ_{k=0..topK-1, row(k,t) != -1} inp[row(k,t)] * probs[t][k]}, slot order,
   * computed in fp32 with separately rounded multiply and add ({@code acc = x0 * p0} for slot 0, 0 when
   * slot 0 was dropped, then {@code acc = acc + xk * pk}). Tokens whose slots were all dropped give +0.
   * A CUDA twin must keep the roundings separate ({@code __fmul_rn}/{@code __fadd_rn}): nvcc's default
   * FMA contraction would change last bits.
   *
   * @param inp       {@code [numRows, hidden]} permuted fp32 rows (hidden a multiple of 4)
   * @param numRows   rows of {@code inp}
   * @param hidden    H
   * @param rowIdMap  {@code [topK * numTokens]} k-major map with entries -1 or in {@code [0, numRows)}
   * @param probs     {@code [numTokens, topK]} fp32 merging weights, or null for weight 1 (plain sum)
   * @param numTokens N of the output
   * @param topK      ≥ 1
   * @return {@code [numTokens, hidden]} fp32
   */
  public static float[] moeUnpermute(float[] inp, int numRows, int hidden, int[] rowIdMap, float[] probs,
      int numTokens, int topK) {
    return unpermute(inp, numRows, hidden, rowIdMap, probs, numTokens, topK, Accumulation.FP32, 4, "fp32");
  }

  /**
   * The bf16 twin of {@link #moeUnpermute(float[], int, int, int[], float[], int, int)} with the
   * upstream accumulation ({@link Accumulation#INPUT_DTYPE}).
   */
  public static short[] moeUnpermute(short[] inp, int numRows, int hidden, int[] rowIdMap, float[] probs,
      int numTokens, int topK) {
    return moeUnpermute(inp, numRows, hidden, rowIdMap, probs, numTokens, topK, Accumulation.INPUT_DTYPE);
  }

  /**
   * bf16 unpermute with a chosen accumulation precision; otherwise as
   * {@link #moeUnpermute(float[], int, int, int[], float[], int, int)} (hidden a multiple of 8).
   */
  public static short[] moeUnpermute(short[] inp, int numRows, int hidden, int[] rowIdMap, float[] probs,
      int numTokens, int topK, Accumulation accumulation) {
    TeChecks.notNull(accumulation, "accumulation");
    return unpermute(inp, numRows, hidden, rowIdMap, probs, numTokens, topK, accumulation, 2, "bf16");
  }

  /**
   * {@code moe_unpermute(inp, row_id_map, map_type="index")} without probs, exactly as TE-PY treats
   * it: {@code topK = 1} and {@code num_tokens = row_id_map.length}, so the output has {@code N * topK}
   * rows in the map's k-major order (row {@code k*N + t} = the permuted row of token t's slot k, or
   * zeros if dropped) — not a per-token sum. Only meaningful for maps built with topK = 1; for the
   * summing variant pass explicit {@code numTokens}/{@code topK} and {@code probs = null}.
   */
  public static float[] moeUnpermute(float[] inp, int numRows, int hidden, int[] rowIdMap) {
    TeChecks.notNull(rowIdMap, "row_id_map");
    return moeUnpermute(inp, numRows, hidden, rowIdMap, null, rowIdMap.length, 1);
  }

  /** bf16 twin of {@link #moeUnpermute(float[], int, int, int[])}; rows are copied bit-exactly. */
  public static short[] moeUnpermute(short[] inp, int numRows, int hidden, int[] rowIdMap) {
    TeChecks.notNull(rowIdMap, "row_id_map");
    return moeUnpermute(inp, numRows, hidden, rowIdMap, null, rowIdMap.length, 1);
  }

  // ---------------------------------------------------------------------------------------------

  private static <T> Result<T> permute(T inp, int numTokens, int hidden, int[] indices, int topK,
      int numOutTokens, int elementBytes, String dtype) {
    TeChecks.notNull(inp, "inp");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.nonNegative("hidden", hidden);
    int inLen = TeChecks.elements("inp", numTokens, hidden);
    TeChecks.length("inp", java.lang.reflect.Array.getLength(inp), inLen, "[" + numTokens + ", " + hidden + "]");
    int expanded = checkIndices(indices, numTokens, topK);
    int numOut = resolveNumOut(numOutTokens, expanded);
    if (inLen > 0) {
      TeChecks.vectorWidth("moe_permute(index map)", hidden, elementBytes, dtype);
    }
    int outLen = TeChecks.elements("permuted output", numOut, hidden);
    int[] map = rowIdMap(indices, numTokens, topK, expanded, numOut);
    T out = TeRows.zeros(inp, outLen);
    for (int k = 0; k < topK; k++) {
      for (int t = 0; t < numTokens; t++) {
        int r = map[k * numTokens + t];
        if (r >= 0) {
          TeRows.copyRow(inp, t, out, r, hidden);
        }
      }
    }
    return new Result<>(out, map, numOut);
  }

  private static <T> T unpermute(T inp, int numRows, int hidden, int[] rowIdMap, float[] probs, int numTokens,
      int topK, Accumulation accumulation, int elementBytes, String dtype) {
    TeChecks.notNull(inp, "inp");
    TeChecks.notNull(rowIdMap, "row_id_map");
    TeChecks.nonNegative("num_rows (rows of inp)", numRows);
    TeChecks.nonNegative("hidden", hidden);
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.positive("topK", topK);
    int inLen = TeChecks.elements("inp", numRows, hidden);
    TeChecks.length("inp", java.lang.reflect.Array.getLength(inp), inLen, "[" + numRows + ", " + hidden + "]");
    int mapLen = TeChecks.int32("num_tokens * topK", (long) numTokens * topK);
    TeChecks.length("row_id_map", rowIdMap.length, mapLen, "[" + topK + " * " + numTokens + "]");
    if (probs != null) {
      TeChecks.length("probs", probs.length, mapLen, "[" + numTokens + ", " + topK + "]");
    }
    for (int i = 0; i < mapLen; i++) {
      int r = rowIdMap[i];
      if (r < -1 || r >= numRows) {
        throw new IllegalArgumentException("row_id_map[" + i + "] (k=" + (i / Math.max(numTokens, 1)) + ", token "
            + (i % Math.max(numTokens, 1)) + ") = " + r + ", expected -1 or a row in [0, " + numRows + ")");
      }
    }
    int outLen = TeChecks.elements("unpermuted output", numTokens, hidden);
    if (inLen > 0 && outLen > 0) {
      TeChecks.vectorWidth("moe_unpermute(index map)", hidden, elementBytes, dtype);
    }
    T out = TeRows.zeros(inp, outLen);
    if (outLen == 0) {
      return out;
    }
    boolean bf16Steps = inp instanceof short[] && accumulation == Accumulation.INPUT_DTYPE;
    float[] acc = new float[hidden];
    float[] row = new float[hidden];
    for (int t = 0; t < numTokens; t++) {
      int r0 = rowIdMap[t];
      if (r0 != -1) {
        TeRows.loadRow(inp, r0, hidden, acc);
        if (probs != null) {
          float p = weight(probs[t * topK], bf16Steps);
          for (int h = 0; h < hidden; h++) {
            acc[h] = round(acc[h] * p, bf16Steps);
          }
        }
      } else {
        Arrays.fill(acc, 0f);
      }
      for (int k = 1; k < topK; k++) {
        int r = rowIdMap[k * numTokens + t];
        if (r == -1) {
          continue;
        }
        TeRows.loadRow(inp, r, hidden, row);
        if (probs != null) {
          float p = weight(probs[t * topK + k], bf16Steps);
          for (int h = 0; h < hidden; h++) {
            acc[h] = round(acc[h] + round(row[h] * p, bf16Steps), bf16Steps);
          }
        } else {
          for (int h = 0; h < hidden; h++) {
            acc[h] = round(acc[h] + row[h], bf16Steps);
          }
        }
      }
      TeRows.storeRow(acc, out, t, hidden);
    }
    return out;
  }

  /** TE stages the fp32 prob in the compute type: bf16 in the upstream bf16 path. */
  private static float weight(float prob, boolean bf16Steps) {
    return bf16Steps ? Bf16.round(prob) : prob;
  }

  /**
   * One bf16 operation = the fp32 result rounded to bf16. Since fp32 carries more than 2·8+2 bits,
   * rounding the fp32 sum/product again gives the correctly rounded bf16 result (what the GPU's bf16
   * instructions produce).
   */
  private static float round(float value, boolean bf16Steps) {
    return bf16Steps ? Bf16.round(value) : value;
  }

  /** Checks indices/topK/numTokens and returns numTokens * topK. */
  private static int checkIndices(int[] indices, int numTokens, int topK) {
    TeChecks.notNull(indices, "indices");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.positive("topK", topK);
    int expanded = TeChecks.int32("num_tokens * topK", (long) numTokens * topK);
    TeChecks.length("indices", indices.length, expanded, "[" + numTokens + ", " + topK + "]");
    checkNoDuplicateExperts(indices, numTokens, topK);
    return expanded;
  }

  private static void checkNoDuplicateExperts(int[] indices, int numTokens, int topK) {
    if (topK == 1) {
      return;
    }
    int[] sorted = topK > 16 ? new int[topK] : null;
    for (int t = 0; t < numTokens; t++) {
      int base = t * topK;
      if (sorted == null) {
        for (int a = 0; a < topK; a++) {
          int e = indices[base + a];
          if (e < 0) {
            continue;
          }
          for (int b = a + 1; b < topK; b++) {
            if (indices[base + b] == e) {
              throw duplicate(t, e, a, b);
            }
          }
        }
      } else {
        System.arraycopy(indices, base, sorted, 0, topK);
        Arrays.sort(sorted);
        for (int a = 1; a < topK; a++) {
          if (sorted[a] >= 0 && sorted[a] == sorted[a - 1]) {
            int e = sorted[a];
            int first = -1;
            int second = -1;
            for (int k = 0; k < topK; k++) {
              if (indices[base + k] == e) {
                if (first < 0) {
                  first = k;
                } else if (second < 0) {
                  second = k;
                }
              }
            }
            throw duplicate(t, e, first, second);
          }
        }
      }
    }
  }

  private static IllegalArgumentException duplicate(int token, int expert, int slotA, int slotB) {
    return new IllegalArgumentException("indices: token " + token + " lists expert " + expert + " twice (slots "
        + slotA + " and " + slotB + "); a routing row must name distinct experts");
  }

  private static int resolveNumOut(int numOutTokens, int expanded) {
    if (numOutTokens < 0 || numOutTokens > expanded) {
      throw new IllegalArgumentException("num_out_tokens = " + numOutTokens + ", expected a value in [0, "
          + expanded + "] (num_tokens * topK; 0 keeps every slot)");
    }
    return numOutTokens == 0 ? expanded : numOutTokens;
  }

  /**
   * Stable sort of positions by unsigned key. Packing (uint32 key, position) into one long makes
   * every element distinct, so a plain sort is stable by construction.
   */
  private static int[] rowIdMap(int[] indices, int numTokens, int topK, int expanded, int numOut) {
    long[] keys = new long[expanded];
    for (int p = 0; p < expanded; p++) {
      keys[p] = (Integer.toUnsignedLong(indices[p]) << 31) | p;
    }
    Arrays.sort(keys);
    int[] map = new int[expanded];
    for (int i = 0; i < expanded; i++) {
      int p = (int) (keys[i] & 0x7FFF_FFFFL);
      int t = p / topK;
      int k = p % topK;
      map[k * numTokens + t] = i < numOut ? i : -1;
    }
    return map;
  }
}
