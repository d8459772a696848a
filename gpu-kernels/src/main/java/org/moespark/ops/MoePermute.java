package org.moespark.ops;

import static org.moespark.ops.OpChecks.elements;
import static org.moespark.ops.OpChecks.fail;
import static org.moespark.ops.OpChecks.length;
import static org.moespark.ops.OpChecks.nonNegative;
import static org.moespark.ops.OpChecks.nonNull;
import static org.moespark.ops.OpChecks.positive;

import java.util.Arrays;

/**
 * Paddle {@code paddle.nn.functional.moe_permute} (moe-ops-semantics.md §2): groups token rows by
 * expert, each expert's segment padded to a multiple of {@code padding_alignment} rows with
 * zero rows. Java reference and CPU backend.
 *
 * <p>Layout (§2.3, §2.4): {@code P_e = ceil(tokens_per_expert[e] / A) * A} rows for expert e,
 * starting at {@code off_e = Σ_{j<e} P_j}; {@code R = Σ P_e}. Within a segment the rows are in
 * <b>ascending token id</b>; rows {@code off_e + tokens_per_expert[e] .. off_e + P_e - 1} are padding
 * (data 0, scale 0, prob 0, expert index -1). Every position is an integer prefix sum, a pure
 * function of the routemap (no atomics), so the CUDA twin must reproduce the maps bit for bit.
 * Data rows are bit-exact copies (bf16, fp32, fp8 bytes, scale words are never reinterpreted).
 *
 * <p>Use {@link #permute} for the upstream four (five) outputs, or {@link #maps} once and then
 * {@code gather} per tensor (e.g. fp8 data plus its scales, or UE8M0-packed {@code int} scales).
 *
 * <p>Differences from upstream, all on inputs upstream leaves undefined (§2.5), which are rejected
 * here instead: expert ids other than -1 outside {@code [0, E)}, duplicate experts in a row,
 * {@code tokens_per_expert} that is not the exact histogram of the routemap, alignment ≤ 0, sizes
 * whose rows × hidden product overflows 32-bit math. {@code num_experts} is limited to
 * {@value #MAX_EXPERTS} (Paddle's {@code kMaxNumExperts}). The 2026 {@code override_buffer_size} and
 * {@code using_tp_alloc} flags are not implemented; {@code return_expert_indices} is always on.
 */
public final class MoePermute {
  /** Largest {@code num_experts} accepted (Paddle's {@code kMaxNumExperts} since 2026). */
  public static final int MAX_EXPERTS = 384;
  /** Columns covered by one dequantisation scale of fp8 tokens. */
  public static final int SCALE_BLOCK = 128;

  private MoePermute() {}

  /**
   * The index part of {@code moe_permute}: everything except data movement (what
   * {@code do_gather = false} computes upstream).
   *
   * @param tokens S
   * @param numExperts E
   * @param rows R, the number of permuted rows including padding
   * @param zippedExpertwiseRowmap {@code [S, E]}: row of (token, expert), or -1
   * @param tokenProbUnzipped {@code [R]}: prob of each row, 0 for padding rows
   * @param expertIndices {@code [R]}: expert of each row, -1 for padding rows
   * @param expertRowOffsets {@code [E + 1]}: segment of expert e is rows
   *     {@code [expertRowOffsets[e], expertRowOffsets[e+1])}
   * @param tokensPerExpert {@code [E]} the validated histogram (a copy of the argument)
   */
  public record Maps(int tokens, int numExperts, int rows, int[] zippedExpertwiseRowmap,
      float[] tokenProbUnzipped, int[] expertIndices, int[] expertRowOffsets, int[] tokensPerExpert) {

    /** Row of (token, expert), or -1. */
    public int row(int token, int expert) {
      return zippedExpertwiseRowmap[token * numExperts + expert];
    }

    /** True when row {@code r} is a padding row. */
    public boolean isPadding(int r) {
      return expertIndices[r] < 0;
    }
  }

  /**
   * The outputs of {@code moe_permute} under their upstream names.
   *
   * @param <X> {@code short[]} (bf16 bits), {@code float[]} or {@code byte[]} (fp8 e4m3 bits)
   * @param hiddenStatesUnzipped {@code [R, H]}; with {@code doGather = false} allocated but not
   *     written (all zero here; undefined upstream)
   * @param zippedExpertwiseRowmap {@code [S, E]}
   * @param tokenProbUnzipped {@code [R]} (upstream documents {@code [R, 1]}; the tensor is 1-D)
   * @param scaleUnzipped {@code [R, ceil(H/128)]} for fp8 input, else {@code null}; like the data,
   *     written only when gathering (padding rows are 0 either way)
   * @param expertIndices {@code [R]} ({@code return_expert_indices} output)
   * @param maps the full index maps (row offsets per expert included)
   */
  public record Result<X>(X hiddenStatesUnzipped, int[] zippedExpertwiseRowmap, float[] tokenProbUnzipped,
      float[] scaleUnzipped, int[] expertIndices, Maps maps) {
    public int rows() {
      return maps.rows();
    }
  }

  /**
   * Computes the maps of {@code moe_permute} (no data movement).
   *
   * @param expertRoutemapTopk {@code [tokens, topK]} expert ids, -1 for an empty slot (anywhere in
   *     the row)
   * @param expertProbTopk {@code [tokens, topK]} fp32 prob of each slot (copied verbatim)
   * @param tokensPerExpert {@code [numExperts]}: must equal the number of valid ids per expert
   * @param paddingAlignment A ≥ 1: segments are padded to a multiple of A <b>rows</b> (upstream docs
   *     say bytes; the code counts rows; any positive A, not only powers of two)
   */
  public static Maps maps(int[] expertRoutemapTopk, float[] expertProbTopk, int tokens, int topK,
      int numExperts, int[] tokensPerExpert, int paddingAlignment) {
    String op = "MoePermute";
    nonNegative(op, "tokens", tokens);
    positive(op, "topK", topK);
    OpChecks.inRange(op, "numExperts", numExperts, 1, MAX_EXPERTS);
    positive(op, "paddingAlignment", paddingAlignment);
    nonNull(op, "expertRoutemapTopk", expertRoutemapTopk);
    nonNull(op, "expertProbTopk", expertProbTopk);
    nonNull(op, "tokensPerExpert", tokensPerExpert);
    String skShape = "[" + tokens + ", " + topK + "]";
    length(op, "expertRoutemapTopk", expertRoutemapTopk.length, (long) tokens * topK, skShape);
    length(op, "expertProbTopk", expertProbTopk.length, (long) tokens * topK, skShape);
    length(op, "tokensPerExpert", tokensPerExpert.length, numExperts, "[" + numExperts + "]");
    int[] hist = histogram(op, expertRoutemapTopk, tokens, topK, numExperts);
    for (int e = 0; e < numExperts; e++) {
      if (tokensPerExpert[e] != hist[e]) {
        throw fail(op, "tokensPerExpert[" + e + "] = " + tokensPerExpert[e]
            + " but expertRoutemapTopk routes " + hist[e] + " tokens to expert " + e);
      }
    }
    int[] offsets = new int[numExperts + 1];
    long r = 0;
    for (int e = 0; e < numExperts; e++) {
      offsets[e] = (int) r;
      r += ((long) hist[e] + paddingAlignment - 1) / paddingAlignment * paddingAlignment;
      if (r > OpChecks.MAX_ELEMENTS) {
        throw fail(op, "padded row count exceeds " + OpChecks.MAX_ELEMENTS + " at expert " + e);
      }
    }
    int rows = (int) r;
    offsets[numExperts] = rows;
    int[] rowmap = new int[elements(op, "zippedExpertwiseRowmap [tokens, numExperts]", tokens, numExperts)];
    Arrays.fill(rowmap, -1);
    float[] prob = new float[rows];
    int[] expertIdx = new int[rows];
    Arrays.fill(expertIdx, -1);
    int[] cnt = new int[numExperts];
    for (int t = 0; t < tokens; t++) {
      for (int k = 0; k < topK; k++) {
        int e = expertRoutemapTopk[t * topK + k];
        if (e < 0) {
          continue;
        }
        int row = offsets[e] + cnt[e]++;
        rowmap[t * numExperts + e] = row;
        prob[row] = expertProbTopk[t * topK + k];
        expertIdx[row] = e;
      }
    }
    return new Maps(tokens, numExperts, rows, rowmap, prob, expertIdx, offsets, tokensPerExpert.clone());
  }

  /**
   * {@code moe_permute} for bf16 tokens ({@code short[]} holding bf16 bit patterns).
   *
   * @param hiddenStates {@code [tokens, hidden]} bf16 bits
   * @param doGather false: compute maps and probs only (identical to the gather case), leave the
   *     data rows unwritten
   */
  public static Result<short[]> permute(short[] hiddenStates, int tokens, int hidden, int[] expertRoutemapTopk,
      float[] expertProbTopk, int topK, int numExperts, int[] tokensPerExpert, int paddingAlignment,
      boolean doGather) {
    checkData("MoePermute", "hiddenStates", hiddenStates == null ? -1 : hiddenStates.length, tokens, hidden);
    Maps m = maps(expertRoutemapTopk, expertProbTopk, tokens, topK, numExperts, tokensPerExpert, paddingAlignment);
    short[] out = doGather ? gather(m, hiddenStates, hidden) : new short[rowsTimes(m, hidden)];
    return new Result<>(out, m.zippedExpertwiseRowmap, m.tokenProbUnzipped, null, m.expertIndices, m);
  }

  /** {@code moe_permute} for fp32 tokens (the CPU layer's activations); otherwise as the bf16 form. */
  public static Result<float[]> permute(float[] hiddenStates, int tokens, int hidden, int[] expertRoutemapTopk,
      float[] expertProbTopk, int topK, int numExperts, int[] tokensPerExpert, int paddingAlignment,
      boolean doGather) {
    checkData("MoePermute", "hiddenStates", hiddenStates == null ? -1 : hiddenStates.length, tokens, hidden);
    Maps m = maps(expertRoutemapTopk, expertProbTopk, tokens, topK, numExperts, tokensPerExpert, paddingAlignment);
    float[] out = doGather ? gather(m, hiddenStates, hidden) : new float[rowsTimes(m, hidden)];
    return new Result<>(out, m.zippedExpertwiseRowmap, m.tokenProbUnzipped, null, m.expertIndices, m);
  }

  /**
   * {@code moe_permute} for fp8 e4m3 tokens with their fp32 dequantisation scales
   * {@code [tokens, ceil(hidden/128)]}. Bytes and scales are copied verbatim (never re-quantised).
   * For UE8M0-packed {@code int} scales use {@link #maps} and {@link #gather(Maps, int[], int)}.
   */
  public static Result<byte[]> permuteFp8(byte[] hiddenStates, float[] scale, int tokens, int hidden,
      int[] expertRoutemapTopk, float[] expertProbTopk, int topK, int numExperts, int[] tokensPerExpert,
      int paddingAlignment, boolean doGather) {
    String op = "MoePermute";
    checkData(op, "hiddenStates", hiddenStates == null ? -1 : hiddenStates.length, tokens, hidden);
    int scaleCols = OpChecks.ceilDiv(hidden, SCALE_BLOCK);
    nonNull(op, "scale", scale);
    length(op, "scale", scale.length, (long) tokens * scaleCols, "[" + tokens + ", " + scaleCols + "]");
    Maps m = maps(expertRoutemapTopk, expertProbTopk, tokens, topK, numExperts, tokensPerExpert, paddingAlignment);
    byte[] out = doGather ? gather(m, hiddenStates, hidden) : new byte[rowsTimes(m, hidden)];
    float[] su = doGather ? gather(m, scale, scaleCols) : new float[rowsTimes(m, scaleCols)];
    return new Result<>(out, m.zippedExpertwiseRowmap, m.tokenProbUnzipped, su, m.expertIndices, m);
  }

  /**
   * Copies row t of {@code src [tokens, cols]} to every row the maps give it, zero padding rows.
   *
   * @return {@code [rows, cols]}
   */
  public static short[] gather(Maps maps, short[] src, int cols) {
    int n = checkGather(maps, src == null ? -1 : src.length, cols);
    short[] out = new short[n];
    forEachCopy(maps, cols, (from, to) -> System.arraycopy(src, from, out, to, cols));
    return out;
  }

  /** As {@link #gather(Maps, short[], int)} for fp32 rows (tokens or fp32 scales). */
  public static float[] gather(Maps maps, float[] src, int cols) {
    int n = checkGather(maps, src == null ? -1 : src.length, cols);
    float[] out = new float[n];
    forEachCopy(maps, cols, (from, to) -> System.arraycopy(src, from, out, to, cols));
    return out;
  }

  /** As {@link #gather(Maps, short[], int)} for fp8 bytes. */
  public static byte[] gather(Maps maps, byte[] src, int cols) {
    int n = checkGather(maps, src == null ? -1 : src.length, cols);
    byte[] out = new byte[n];
    forEachCopy(maps, cols, (from, to) -> System.arraycopy(src, from, out, to, cols));
    return out;
  }

  /** As {@link #gather(Maps, short[], int)} for int words (UE8M0 scales packed four per int). */
  public static int[] gather(Maps maps, int[] src, int cols) {
    int n = checkGather(maps, src == null ? -1 : src.length, cols);
    int[] out = new int[n];
    forEachCopy(maps, cols, (from, to) -> System.arraycopy(src, from, out, to, cols));
    return out;
  }

  // ---------------------------------------------------------------------------------------------

  /** Validates ids (-1 or in range, no duplicates per row) and returns the per-expert histogram. */
  static int[] histogram(String op, int[] route, int tokens, int topK, int numExperts) {
    int[] hist = new int[numExperts];
    int[] seenAt = new int[numExperts];
    Arrays.fill(seenAt, -1);
    for (int t = 0; t < tokens; t++) {
      for (int k = 0; k < topK; k++) {
        int e = route[t * topK + k];
        if (e == -1) {
          continue;
        }
        if (e < 0 || e >= numExperts) {
          throw fail(op, "expertRoutemapTopk[" + t + ", " + k + "] = " + e + " is outside [0, " + numExperts
              + ") and is not -1");
        }
        if (seenAt[e] == t) {
          throw fail(op, "expertRoutemapTopk row " + t + " names expert " + e + " twice (slot " + k + ")");
        }
        seenAt[e] = t;
        hist[e]++;
      }
    }
    return hist;
  }

  private interface RowCopy {
    void copy(int from, int to);
  }

  private static void forEachCopy(Maps m, int cols, RowCopy copy) {
    if (cols == 0) {
      return;
    }
    for (int t = 0; t < m.tokens; t++) {
      for (int e = 0; e < m.numExperts; e++) {
        int r = m.zippedExpertwiseRowmap[t * m.numExperts + e];
        if (r >= 0) {
          copy.copy(t * cols, r * cols);
        }
      }
    }
    // Padding rows stay zero: Java arrays are zero-initialised.
  }

  private static int checkGather(Maps m, int srcLength, int cols) {
    String op = "MoePermute.gather";
    nonNull(op, "maps", m);
    nonNegative(op, "cols", cols);
    if (srcLength < 0) {
      throw fail(op, "src must not be null");
    }
    length(op, "src", srcLength, (long) m.tokens * cols, "[" + m.tokens + ", " + cols + "]");
    return elements(op, "output [rows, cols]", m.rows, cols);
  }

  private static void checkData(String op, String name, int length, int tokens, int hidden) {
    nonNegative(op, "tokens", tokens);
    positive(op, "hidden", hidden);
    if (length < 0) {
      throw fail(op, name + " must not be null");
    }
    elements(op, name, tokens, hidden);
    length(op, name, length, (long) tokens * hidden, "[" + tokens + ", " + hidden + "]");
  }

  private static int rowsTimes(Maps m, int cols) {
    return elements("MoePermute", "output [rows, cols]", m.rows, cols);
  }
}
