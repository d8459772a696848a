package org.moespark.ops;

import java.util.Arrays;

/**
 * TransformerEngine's <em>mask-map</em> token permutation (the default {@code map_type="mask"}):
 * {@code moe_permute}, {@code moe_permute_with_probs}, {@code moe_permute_and_pad_with_probs} and
 * {@code moe_unpermute} (TE {@code pytorch/permutation.py} over the Triton kernels of {@code
 * common/triton/permutation.py}; spec moe-ops-semantics §8). Public API and exact CPU reference; a
 * CUDA twin takes the same arguments.
 *
 * <h2>Layouts</h2>
 * All tensors are flat row-major arrays whose shape is passed explicitly:
 * <ul>
 *   <li>tokens {@code inp [num_tokens, hidden]}: fp32 ({@code float[]}) or bf16 ({@code short[]} of
 *       bf16 bits); any hidden size (the Triton kernels mask the tail, no vector-width rule);</li>
 *   <li>{@code routing_map [num_tokens, num_experts]} bytes, 1 = token routed to expert, 0 = not
 *       (torch.bool layout); any number of experts per token, including none;</li>
 *   <li>{@code probs} / {@code merging_probs [num_tokens, num_experts]} fp32, dense;</li>
 *   <li>{@code row_id_map [num_tokens, 2 * num_experts + 1]} int32, built by {@link #makeRowIdMap}.</li>
 * </ul>
 *
 * <h2>row_id_map (TE {@code make_row_id_map}, spec §8.1)</h2>
 * The destination row of (token t, expert e) is {@code (#routed pairs of experts < e) + (#tokens
 * t' < t routed to e)}: the permuted tensor is expert-major, tokens ascending within an expert. Row t
 * of the map then holds, for its {@code n} routed experts: columns {@code [0, n)} the destination rows
 * in <b>descending</b> order, columns {@code [E, E + n)} the matching expert ids (hence also
 * descending), column {@code 2E} the count {@code n}. The unused columns {@code [n, E)} and
 * {@code [E + n, 2E)} are -1 here; upstream leaves whatever its earlier passes wrote there ("useless
 * values") and never reads them, so consumers must read only the first {@code n} entries.
 *
 * <h2>Differences from upstream (intended behaviour, spec §16)</h2>
 * <ul>
 *   <li>{@code num_out_tokens} must equal the number of routed pairs ({@code Σ routing_map}); upstream
 *       ignores it when writing and overruns the output if it is too small (TE issue #3346) or leaves
 *       garbage rows if it is too large. Upstream asserts {@code num_out_tokens > 0}; here 0 is
 *       accepted exactly when nothing is routed.</li>
 *   <li>Padding rows of {@code moe_permute_and_pad_with_probs} and their probs are zeros (upstream
 *       fixes 7101f4bec / c988548f7).</li>
 *   <li>{@code moe_unpermute} takes the output token count explicitly (upstream's {@code
 *       restore_shape}) and checks it against the map, so the pitfall of defaulting it to the permuted
 *       row count (§16.9) cannot happen.</li>
 *   <li>routing_map entries other than 0/1, probs/routing_map shape disagreement, tokens_per_expert
 *       disagreeing with the map and malformed row_id_maps are rejected.</li>
 *   <li>Empty input: upstream returns {@code inp} and empty maps when {@code inp.numel() == 0}; here
 *       the (well-defined) row_id_map is still produced.</li>
 * </ul>
 * Kept on purpose: {@code moe_permute_with_probs} writes a zero activation row for a routed slot whose
 * prob is exactly ±0.0 (TE's "routing-map padding" convention, §8.2 / §16.7). A router whose
 * probability underflows to 0 therefore feeds zeros to that expert; the prob itself is still copied.
 */
public final class TeMaskPermute {
  private TeMaskPermute() {}

  /**
   * Output of {@code moe_permute(inp, routing_map, num_out_tokens)}.
   *
   * @param output   {@code [num_out_tokens, hidden]} permuted tokens (bit-exact copies)
   * @param rowIdMap {@code [num_tokens, 2E + 1]}
   */
  public record Permuted<T>(T output, int[] rowIdMap) {}

  /**
   * Output of {@code moe_permute_with_probs}.
   *
   * @param output        {@code [num_out_tokens, hidden]} permuted tokens (zero rows for zero probs)
   * @param permutedProbs {@code [num_out_tokens]} fp32, {@code probs[t][e]} at the row of (t, e)
   * @param rowIdMap      {@code [num_tokens, 2E + 1]}
   */
  public record PermutedWithProbs<T>(T output, float[] permutedProbs, int[] rowIdMap) {}

  /**
   * Output of {@code moe_permute_and_pad_with_probs}.
   *
   * @param output                 {@code [Σ target, hidden]}; expert e's rows start at
   *                               {@code Σ_{j<e} target[j]}, padding rows are zero
   * @param permutedProbs          {@code [Σ target]}, zero on padding rows
   * @param rowIdMap               the <em>unpadded</em> map (identical to {@link #makeRowIdMap});
   *                               the padded row of (t, e) is {@code row + padOffsets[e]}
   * @param padOffsets             {@code [E]} exclusive prefix sum of {@code target - tokens_per_expert},
   *                               or null when no expert needed padding (as upstream returns None)
   * @param targetTokensPerExpert  {@code [E]} {@code ceil(tokens_per_expert[e] / align) * align}
   */
  public record PaddedPermuted<T>(T output, float[] permutedProbs, int[] rowIdMap, int[] padOffsets,
      int[] targetTokensPerExpert) {}

  /**
   * TE {@code make_row_id_map(routing_map, num_tokens, num_experts)} (see class doc for the layout).
   *
   * @param routingMap {@code [numTokens, numExperts]} of 0/1
   * @param numTokens  N ≥ 0
   * @param numExperts E ≥ 1
   * @return {@code [numTokens, 2 * numExperts + 1]} int32
   */
  public static int[] makeRowIdMap(byte[] routingMap, int numTokens, int numExperts) {
    int[] tokensPerExpert = checkRoutingMap(routingMap, numTokens, numExperts);
    return rowIdMap(routingMap, numTokens, numExperts, tokensPerExpert);
  }

  /**
   * {@code moe_permute(inp, routing_map, num_out_tokens)} for fp32 tokens.
   *
   * @param inp          {@code [numTokens, hidden]}
   * @param numTokens    N ≥ 0
   * @param hidden       H ≥ 0
   * @param routingMap   {@code [numTokens, numExperts]} of 0/1
   * @param numExperts   E ≥ 1
   * @param numOutTokens must equal {@code Σ routing_map}
   */
  public static Permuted<float[]> moePermute(float[] inp, int numTokens, int hidden, byte[] routingMap,
      int numExperts, int numOutTokens) {
    PermutedWithProbs<float[]> r = permute(inp, numTokens, hidden, null, routingMap, numExperts, numOutTokens);
    return new Permuted<>(r.output(), r.rowIdMap());
  }

  /** bf16 twin of {@link #moePermute(float[], int, int, byte[], int, int)}. */
  public static Permuted<short[]> moePermute(short[] inp, int numTokens, int hidden, byte[] routingMap,
      int numExperts, int numOutTokens) {
    PermutedWithProbs<short[]> r = permute(inp, numTokens, hidden, null, routingMap, numExperts, numOutTokens);
    return new Permuted<>(r.output(), r.rowIdMap());
  }

  /**
   * {@code moe_permute_with_probs(inp, probs, routing_map, num_out_tokens)} for fp32 tokens: as
   * {@link #moePermute(float[], int, int, byte[], int, int)}, plus {@code permuted_probs[row(t,e)] =
   * probs[t][e]}; a slot whose prob is ±0.0 gets a zero activation row (upstream convention).
   *
   * @param probs {@code [numTokens, numExperts]} fp32
   */
  public static PermutedWithProbs<float[]> moePermuteWithProbs(float[] inp, int numTokens, int hidden,
      float[] probs, byte[] routingMap, int numExperts, int numOutTokens) {
    TeChecks.notNull(probs, "probs");
    return permute(inp, numTokens, hidden, probs, routingMap, numExperts, numOutTokens);
  }

  /** bf16 twin of {@link #moePermuteWithProbs(float[], int, int, float[], byte[], int, int)}. */
  public static PermutedWithProbs<short[]> moePermuteWithProbs(short[] inp, int numTokens, int hidden,
      float[] probs, byte[] routingMap, int numExperts, int numOutTokens) {
    TeChecks.notNull(probs, "probs");
    return permute(inp, numTokens, hidden, probs, routingMap, numExperts, numOutTokens);
  }

  /**
   * {@code moe_permute_and_pad_with_probs(inp, probs, routing_map, tokens_per_expert, align_size)}
   * for fp32 tokens: {@code moe_permute_with_probs} whose expert segments are each padded with zero
   * rows to a multiple of {@code alignSize} (spec §8.4). Equals {@code moe_permute_with_probs}
   * followed by per-expert zero padding (TE's {@code Fp8Padding}).
   *
   * @param tokensPerExpert {@code [numExperts]} must be the true per-expert counts
   *                        ({@code routing_map.sum(dim=0)})
   * @param alignSize       ≥ 1, in rows (e.g. 16, or 128 for MXFP8)
   */
  public static PaddedPermuted<float[]> moePermuteAndPadWithProbs(float[] inp, int numTokens, int hidden,
      float[] probs, byte[] routingMap, int numExperts, int[] tokensPerExpert, int alignSize) {
    return permuteAndPad(inp, numTokens, hidden, probs, routingMap, numExperts, tokensPerExpert, alignSize);
  }

  /** bf16 twin of {@link #moePermuteAndPadWithProbs(float[], int, int, float[], byte[], int, int[], int)}. */
  public static PaddedPermuted<short[]> moePermuteAndPadWithProbs(short[] inp, int numTokens, int hidden,
      float[] probs, byte[] routingMap, int numExperts, int[] tokensPerExpert, int alignSize) {
    return permuteAndPad(inp, numTokens, hidden, probs, routingMap, numExperts, tokensPerExpert, alignSize);
  }

  /**
   * {@code moe_unpermute(inp, row_id_map, merging_probs, restore_shape=(numTokens, hidden),
   * map_type="mask", pad_offsets)} for fp32 tokens. For every token t with routed pairs
   * (row_i, e_i), i = 0..n-1 in row_id_map order (descending row = descending expert id):
   * {@code acc = 0; acc = acc + inp[row_i + padOffsets[e_i]] * mergingProbs[t][e_i]} in fp32, multiply
   * and add rounded separately (no fused multiply-add; upstream's Triton build may contract them, a
   * difference of at most one rounding per term; a CUDA twin must use {@code __fmul_rn}/{@code
   * __fadd_rn}), then {@code out[t] = acc}. Tokens routed nowhere give +0 rows.
   *
   * @param inp          {@code [numRows, hidden]} expert outputs in permuted order
   * @param numRows      rows of {@code inp}
   * @param hidden       H
   * @param rowIdMap     {@code [numTokens, 2E + 1]} from {@link #makeRowIdMap}
   * @param numExperts   E
   * @param mergingProbs {@code [numTokens, numExperts]} fp32 weights, or null for a plain sum
   * @param numTokens    rows of the output (upstream {@code restore_shape[0]})
   * @param padOffsets   {@code [numExperts]} from {@link #moePermuteAndPadWithProbs}, or null
   * @return {@code [numTokens, hidden]}
   */
  public static float[] moeUnpermute(float[] inp, int numRows, int hidden, int[] rowIdMap, int numExperts,
      float[] mergingProbs, int numTokens, int[] padOffsets) {
    return unpermute(inp, numRows, hidden, rowIdMap, numExperts, mergingProbs, numTokens, padOffsets);
  }

  /**
   * bf16 twin of {@link #moeUnpermute(float[], int, int, int[], int, float[], int, int[])}: inputs are
   * widened exactly, accumulated in fp32 in the same order, and the sum is rounded once to bf16 (RNE).
   */
  public static short[] moeUnpermute(short[] inp, int numRows, int hidden, int[] rowIdMap, int numExperts,
      float[] mergingProbs, int numTokens, int[] padOffsets) {
    return unpermute(inp, numRows, hidden, rowIdMap, numExperts, mergingProbs, numTokens, padOffsets);
  }

  // ---------------------------------------------------------------------------------------------

  private static <T> PermutedWithProbs<T> permute(T inp, int numTokens, int hidden, float[] probs,
      byte[] routingMap, int numExperts, int numOutTokens) {
    checkTokens(inp, numTokens, hidden);
    int[] tokensPerExpert = checkRoutingMap(routingMap, numTokens, numExperts);
    if (probs != null) {
      TeChecks.length("probs", probs.length, (long) numTokens * numExperts,
          "[" + numTokens + ", " + numExperts + "] like routing_map");
    }
    long routed = sum(tokensPerExpert);
    if (numOutTokens != routed) {
      throw new IllegalArgumentException("num_out_tokens = " + numOutTokens + " but routing_map routes " + routed
          + " (token, expert) pairs; the mask-map permute needs num_out_tokens == routing_map.sum()");
    }
    int[] map = rowIdMap(routingMap, numTokens, numExperts, tokensPerExpert);
    return scatter(inp, numTokens, hidden, probs, numExperts, map, null, numOutTokens);
  }

  private static <T> PaddedPermuted<T> permuteAndPad(T inp, int numTokens, int hidden, float[] probs,
      byte[] routingMap, int numExperts, int[] tokensPerExpert, int alignSize) {
    checkTokens(inp, numTokens, hidden);
    TeChecks.notNull(probs, "probs");
    TeChecks.notNull(tokensPerExpert, "tokens_per_expert");
    TeChecks.positive("align_size", alignSize);
    int[] counts = checkRoutingMap(routingMap, numTokens, numExperts);
    TeChecks.length("probs", probs.length, (long) numTokens * numExperts,
        "[" + numTokens + ", " + numExperts + "] like routing_map");
    TeChecks.length("tokens_per_expert", tokensPerExpert.length, numExperts, "[" + numExperts + "]");
    for (int e = 0; e < numExperts; e++) {
      if (tokensPerExpert[e] != counts[e]) {
        throw new IllegalArgumentException("tokens_per_expert[" + e + "] = " + tokensPerExpert[e]
            + " but routing_map routes " + counts[e] + " tokens to expert " + e
            + " (tokens_per_expert must be routing_map.sum(dim=0))");
      }
    }
    int[] target = new int[numExperts];
    int[] padOffsets = new int[numExperts];
    long total = 0;
    long pad = 0;
    boolean padded = false;
    for (int e = 0; e < numExperts; e++) {
      long t = ((long) counts[e] + alignSize - 1) / alignSize * alignSize;
      target[e] = TeChecks.int32("target_tokens_per_expert[" + e + "]", t);
      padOffsets[e] = TeChecks.int32("pad_offsets[" + e + "]", pad);
      pad += t - counts[e];
      total += t;
      padded |= t != counts[e];
    }
    int numOut = TeChecks.int32("sum(target_tokens_per_expert)", total);
    int[] map = rowIdMap(routingMap, numTokens, numExperts, counts);
    int[] offsets = padded ? padOffsets : null;
    PermutedWithProbs<T> r = scatter(inp, numTokens, hidden, probs, numExperts, map, offsets, numOut);
    return new PaddedPermuted<>(r.output(), r.permutedProbs(), map, offsets, target);
  }

  /** The permute kernel: one pass over tokens, writing each routed copy to its (padded) row. */
  private static <T> PermutedWithProbs<T> scatter(T inp, int numTokens, int hidden, float[] probs, int numExperts,
      int[] map, int[] padOffsets, int numOut) {
    T out = TeRows.zeros(inp, TeChecks.elements("permuted output", numOut, hidden));
    float[] permutedProbs = probs == null ? null : new float[numOut];
    int width = 2 * numExperts + 1;
    for (int t = 0; t < numTokens; t++) {
      int base = t * width;
      int n = map[base + 2 * numExperts];
      for (int i = 0; i < n; i++) {
        int e = map[base + numExperts + i];
        long r = (long) map[base + i] + (padOffsets == null ? 0 : padOffsets[e]);
        if (probs != null) {
          float p = probs[t * numExperts + e];
          permutedProbs[(int) r] = p;
          if (p == 0.0f) {
            continue; // zero row (already zero-initialised): TE's routing-map padding convention
          }
        }
        TeRows.copyRow(inp, t, out, r, hidden);
      }
    }
    return new PermutedWithProbs<>(out, permutedProbs, map);
  }

  private static <T> T unpermute(T inp, int numRows, int hidden, int[] rowIdMap, int numExperts,
      float[] mergingProbs, int numTokens, int[] padOffsets) {
    TeChecks.notNull(inp, "inp");
    TeChecks.notNull(rowIdMap, "row_id_map");
    TeChecks.nonNegative("num_rows (rows of inp)", numRows);
    TeChecks.nonNegative("hidden", hidden);
    TeChecks.nonNegative("num_tokens (restore_shape[0])", numTokens);
    TeChecks.positive("num_experts", numExperts);
    int inLen = TeChecks.elements("inp", numRows, hidden);
    TeChecks.length("inp", java.lang.reflect.Array.getLength(inp), inLen, "[" + numRows + ", " + hidden + "]");
    int width = TeChecks.int32("2 * num_experts + 1", 2L * numExperts + 1);
    TeChecks.length("row_id_map", rowIdMap.length, (long) numTokens * width,
        "[" + numTokens + ", " + width + "] for num_tokens = restore_shape[0]");
    if (mergingProbs != null) {
      TeChecks.length("merging_probs", mergingProbs.length, (long) numTokens * numExperts,
          "[" + numTokens + ", " + numExperts + "]");
    }
    if (padOffsets != null) {
      TeChecks.length("pad_offsets", padOffsets.length, numExperts, "[" + numExperts + "]");
      for (int e = 0; e < numExperts; e++) {
        TeChecks.nonNegative("pad_offsets[" + e + "]", padOffsets[e]);
      }
    }
    checkRowIdMap(rowIdMap, numTokens, numExperts, padOffsets, numRows);
    T out = TeRows.zeros(inp, TeChecks.elements("unpermuted output", numTokens, hidden));
    float[] acc = new float[hidden];
    float[] row = new float[hidden];
    for (int t = 0; t < numTokens; t++) {
      int base = t * width;
      int n = rowIdMap[base + 2 * numExperts];
      if (n == 0) {
        continue; // +0 row
      }
      Arrays.fill(acc, 0f);
      for (int i = 0; i < n; i++) {
        int e = rowIdMap[base + numExperts + i];
        long r = (long) rowIdMap[base + i] + (padOffsets == null ? 0 : padOffsets[e]);
        TeRows.loadRow(inp, r, hidden, row);
        if (mergingProbs != null) {
          float p = mergingProbs[t * numExperts + e];
          for (int h = 0; h < hidden; h++) {
            acc[h] = acc[h] + row[h] * p;
          }
        } else {
          for (int h = 0; h < hidden; h++) {
            acc[h] = acc[h] + row[h];
          }
        }
      }
      TeRows.storeRow(acc, out, t, hidden);
    }
    return out;
  }

  private static void checkTokens(Object inp, int numTokens, int hidden) {
    TeChecks.notNull(inp, "inp");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.nonNegative("hidden", hidden);
    int len = TeChecks.elements("inp", numTokens, hidden);
    TeChecks.length("inp", java.lang.reflect.Array.getLength(inp), len, "[" + numTokens + ", " + hidden + "]");
  }

  /** Validates the routing map and returns the per-expert token counts. */
  private static int[] checkRoutingMap(byte[] routingMap, int numTokens, int numExperts) {
    TeChecks.notNull(routingMap, "routing_map");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.positive("num_experts", numExperts);
    int len = TeChecks.elements("routing_map", numTokens, numExperts);
    TeChecks.length("routing_map", routingMap.length, len, "[" + numTokens + ", " + numExperts + "]");
    TeChecks.elements("row_id_map", numTokens, 2L * numExperts + 1);
    int[] counts = new int[numExperts];
    for (int t = 0; t < numTokens; t++) {
      int base = t * numExperts;
      for (int e = 0; e < numExperts; e++) {
        byte v = routingMap[base + e];
        if (v == 1) {
          counts[e]++;
        } else if (v != 0) {
          throw new IllegalArgumentException(
              "routing_map[" + t + "][" + e + "] = " + v + ", expected 0 (not routed) or 1 (routed)");
        }
      }
    }
    return counts;
  }

  /**
   * Expert-major destination rows, then the per-token descending order. Processing tokens in
   * ascending order with one running counter per expert gives each (t, e) its rank among the tokens
   * of expert e; walking experts from E-1 down emits the rows already in descending order (rows of a
   * larger expert are always larger).
   */
  private static int[] rowIdMap(byte[] routingMap, int numTokens, int numExperts, int[] counts) {
    int[] next = new int[numExperts];
    long base = 0;
    for (int e = 0; e < numExperts; e++) {
      next[e] = TeChecks.int32("row offset of expert " + e, base);
      base += counts[e];
    }
    TeChecks.int32("sum(routing_map)", base);
    int width = 2 * numExperts + 1;
    int[] map = new int[numTokens * width];
    Arrays.fill(map, -1);
    for (int t = 0; t < numTokens; t++) {
      int in = t * numExperts;
      int out = t * width;
      int n = 0;
      for (int e = numExperts - 1; e >= 0; e--) {
        if (routingMap[in + e] != 0) {
          map[out + n] = next[e]++;
          map[out + numExperts + n] = e;
          n++;
        }
      }
      map[out + 2 * numExperts] = n;
    }
    return map;
  }

  /** Structural checks of a row_id_map given by the caller, and that every row it reads exists. */
  private static void checkRowIdMap(int[] map, int numTokens, int numExperts, int[] padOffsets, int numRows) {
    int width = 2 * numExperts + 1;
    for (int t = 0; t < numTokens; t++) {
      int base = t * width;
      int n = map[base + 2 * numExperts];
      if (n < 0 || n > numExperts) {
        throw new IllegalArgumentException("row_id_map[" + t + "][" + (2 * numExperts) + "] (n_routed) = " + n
            + ", expected a count in [0, " + numExperts + "]");
      }
      for (int i = 0; i < n; i++) {
        int r = map[base + i];
        int e = map[base + numExperts + i];
        if (e < 0 || e >= numExperts) {
          throw new IllegalArgumentException("row_id_map[" + t + "][" + (numExperts + i) + "] (expert) = " + e
              + ", expected an expert in [0, " + numExperts + ")");
        }
        if (i > 0 && e >= map[base + numExperts + i - 1]) {
          throw new IllegalArgumentException("row_id_map[" + t + "]: expert ids " + map[base + numExperts + i - 1]
              + ", " + e + " at columns " + (numExperts + i - 1) + ", " + (numExperts + i)
              + " are not strictly descending");
        }
        long padded = (long) r + (padOffsets == null ? 0 : padOffsets[e]);
        if (r < 0 || padded >= numRows) {
          throw new IllegalArgumentException("row_id_map[" + t + "][" + i + "] = " + r
              + (padOffsets == null ? "" : " (+ pad_offsets[" + e + "] = " + padded + ")")
              + ", expected a row in [0, " + numRows + ") of inp");
        }
      }
    }
  }

  private static long sum(int[] values) {
    long s = 0;
    for (int v : values) {
      s += v;
    }
    return s;
  }
}
