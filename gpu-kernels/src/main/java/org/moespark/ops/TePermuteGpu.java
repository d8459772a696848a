package org.moespark.ops;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * CUDA twin of {@link TePermute} (TransformerEngine's index-map {@code moe_permute} / {@code
 * moe_unpermute}, spec moe-ops-semantics §7): the same arguments and semantics on device buffers,
 * bit-identical results. Read {@link TePermute}'s class doc for the layouts, the ordering (unsigned
 * expert key, stable by flattened position), {@code num_out_tokens} dropping and the documented
 * differences from upstream; they all hold here.
 *
 * <h2>Device work</h2>
 * Every call runs on the allocator's stream ({@link DeviceAllocator#stream()}) and returns buffers
 * the caller owns (close them, or the allocator reports a leak). Buffers hold flat row-major tensors:
 * tokens as fp32 or bf16 bits (see {@link TeDtype}), {@code indices} and {@code row_id_map} int32,
 * {@code probs} fp32. All offsets are 64-bit; {@code num_tokens * topK} must fit int32 (upstream's
 * index type).
 * <ul>
 *   <li>row_id_map: a stable LSD radix sort (cub, deterministic) of positions {@code t*topK+k} by
 *       the expert id read as uint32, exactly upstream's sort; then {@code map[k*N+t]} = sorted
 *       position, or -1 past {@code num_out_tokens}.</li>
 *   <li>permute: one warp per source token, 16-byte vectors where the row size and addresses allow;
 *       each source row is read once and written to each of its kept rows.</li>
 *   <li>unpermute: one warp per output token, slots in order 0..topK-1, with separately rounded
 *       multiply and add ({@code __fmul_rn}/{@code __fadd_rn}, never contracted into FMA), so fp32
 *       and bf16 results equal the CPU reference bit for bit.</li>
 * </ul>
 * Checks that depend on device data (a token listing an expert twice, row_id_map entries outside
 * {@code -1 ∪ [0, num_rows)}) run on the device; the call then synchronizes the stream once to read
 * the verdict and throws {@link IllegalArgumentException} naming the first offending token/entry,
 * as the CPU reference does (after freeing its outputs).
 */
public final class TePermuteGpu {
  private TePermuteGpu() {}

  /**
   * Output of {@link #moePermute} on the device.
   *
   * @param permuted     {@code [numOutTokens, hidden]} tokens in permuted order
   * @param rowIdMap     {@code [topK * numTokens]} int32, k-major
   * @param numOutTokens rows produced ({@code num_tokens * topK} when 0 was passed)
   */
  public record Result(DeviceBuffer permuted, DeviceBuffer rowIdMap, int numOutTokens) implements AutoCloseable {
    @Override
    public void close() {
      permuted.close();
      rowIdMap.close();
    }
  }

  /**
   * The row_id_map alone, as {@link TePermute#makeRowIdMap}.
   *
   * @param indices      {@code [numTokens, topK]} int32 expert ids on the device (negative = empty slot)
   * @param numTokens    N ≥ 0
   * @param topK         ≥ 1
   * @param numOutTokens rows to keep, in {@code [0, numTokens * topK]}; 0 keeps all
   * @return a new {@code [topK * numTokens]} int32 buffer
   */
  public static DeviceBuffer makeRowIdMap(DeviceAllocator alloc, DeviceBuffer indices, int numTokens, int topK,
      int numOutTokens) {
    int expanded = checkShape(numTokens, topK);
    int numOut = resolveNumOut(numOutTokens, expanded);
    checkIndices(indices, numTokens, topK, expanded);
    TeChecks.notNull(alloc, "alloc");
    NativeLibrary.requireAvailable();
    return rowIdMap(alloc, indices, numTokens, topK, expanded, numOut);
  }

  /**
   * {@code moe_permute(inp, indices, num_out_tokens, map_type="index")}, as
   * {@link TePermute#moePermute(float[], int, int, int[], int, int)} (fp32: hidden a multiple of 4;
   * bf16: a multiple of 8).
   *
   * @param dtype        token type of {@code inp} (and of the result)
   * @param inp          {@code [numTokens, hidden]} tokens on the device
   * @param indices      {@code [numTokens, topK]} int32 expert ids on the device
   * @param numOutTokens rows to keep in {@code [0, numTokens * topK]}; 0 keeps all
   */
  public static Result moePermute(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numTokens, int hidden,
      DeviceBuffer indices, int topK, int numOutTokens) {
    // Scalar checks first (they need no device), then the buffers.
    TeChecks.notNull(dtype, "dtype");
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.nonNegative("hidden", hidden);
    long inLen = TeGpuSupport.elements(numTokens, hidden);
    int expanded = checkShape(numTokens, topK);
    int numOut = resolveNumOut(numOutTokens, expanded);
    if (inLen > 0) {
      TeChecks.vectorWidth("moe_permute(index map)", hidden, dtype.bytes, dtype.label);
    }
    TeGpuSupport.fits("inp [" + numTokens + ", " + hidden + "] " + dtype.label, inp, inLen * dtype.bytes);
    checkIndices(indices, numTokens, topK, expanded);
    TeChecks.notNull(alloc, "alloc");
    NativeLibrary.requireAvailable();
    long rowBytes = (long) hidden * dtype.bytes;
    DeviceBuffer map = rowIdMap(alloc, indices, numTokens, topK, expanded, numOut);
    DeviceBuffer out = null;
    try {
      out = alloc.allocate(rowBytes * numOut, "TePermuteGpu permuted");
      permuteRows0(inp.address(), numTokens, rowBytes, map.address(), topK, out.address(), alloc.stream().handle());
      return new Result(out, map, numOut);
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, out, map);
    }
  }

  /**
   * TE's unpermute with the upstream accumulation of the dtype: fp32 tokens as
   * {@link TePermute#moeUnpermute(float[], int, int, int[], float[], int, int)}, bf16 tokens as
   * {@link TePermute#moeUnpermute(short[], int, int, int[], float[], int, int)}
   * ({@link TePermute.Accumulation#INPUT_DTYPE}).
   *
   * @param inp      {@code [numRows, hidden]} permuted rows on the device
   * @param rowIdMap {@code [topK * numTokens]} int32, entries -1 or in {@code [0, numRows)}
   * @param probs    {@code [numTokens, topK]} fp32 on the device, or null for a plain sum
   * @return a new {@code [numTokens, hidden]} buffer of {@code dtype}
   */
  public static DeviceBuffer moeUnpermute(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numRows,
      int hidden, DeviceBuffer rowIdMap, DeviceBuffer probs, int numTokens, int topK) {
    return moeUnpermute(alloc, dtype, inp, numRows, hidden, rowIdMap, probs, numTokens, topK,
        TePermute.Accumulation.INPUT_DTYPE);
  }

  /**
   * TE's unpermute with a chosen accumulation, as
   * {@link TePermute#moeUnpermute(short[], int, int, int[], float[], int, int, TePermute.Accumulation)};
   * for fp32 tokens both modes are the fp32 computation.
   */
  public static DeviceBuffer moeUnpermute(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numRows,
      int hidden, DeviceBuffer rowIdMap, DeviceBuffer probs, int numTokens, int topK,
      TePermute.Accumulation accumulation) {
    TeChecks.notNull(dtype, "dtype");
    TeChecks.notNull(accumulation, "accumulation");
    TeChecks.nonNegative("num_rows (rows of inp)", numRows);
    TeChecks.nonNegative("hidden", hidden);
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.positive("topK", topK);
    long inLen = TeGpuSupport.elements(numRows, hidden);
    int mapLen = TeChecks.int32("num_tokens * topK", (long) numTokens * topK);
    long outLen = TeGpuSupport.elements(numTokens, hidden);
    if (inLen > 0 && outLen > 0) {
      TeChecks.vectorWidth("moe_unpermute(index map)", hidden, dtype.bytes, dtype.label);
    }
    TeGpuSupport.fits("inp [" + numRows + ", " + hidden + "] " + dtype.label, inp, inLen * dtype.bytes);
    TeGpuSupport.fits("row_id_map [" + topK + " * " + numTokens + "]", rowIdMap, 4L * mapLen);
    if (probs != null) {
      TeGpuSupport.fits("probs [" + numTokens + ", " + topK + "]", probs, 4L * mapLen);
    }
    TeChecks.notNull(alloc, "alloc");
    NativeLibrary.requireAvailable();
    boolean steps = dtype == TeDtype.BF16 && accumulation == TePermute.Accumulation.INPUT_DTYPE;
    DeviceBuffer out = null;
    try (DeviceBuffer flag = TeGpuSupport.flag(alloc, "TePermuteGpu unpermute flag")) {
      out = alloc.allocate(outLen * dtype.bytes, "TePermuteGpu unpermuted");
      unpermute0(dtype == TeDtype.BF16, steps, inp.address(), numRows, hidden, rowIdMap.address(),
          probs == null ? 0L : probs.address(), numTokens, topK, out.address(), flag.address(), alloc.stream().handle());
      int bad = TeGpuSupport.readFlag(flag);
      if (bad != TeGpuSupport.NONE) {
        int r = rowIdMap.view(4L * bad, 4).toInts(1)[0];
        int n = Math.max(numTokens, 1);
        throw new IllegalArgumentException("row_id_map[" + bad + "] (k=" + (bad / n) + ", token " + (bad % n) + ") = "
            + r + ", expected -1 or a row in [0, " + numRows + ")");
      }
      return out;
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, out);
    }
  }

  /**
   * {@code moe_unpermute(inp, row_id_map, map_type="index")} without probs, as TE-PY treats it
   * ({@link TePermute#moeUnpermute(float[], int, int, int[])}): {@code topK = 1} and {@code num_tokens
   * = mapLength}, so row {@code i} of the result is row {@code rowIdMap[i]} of {@code inp} (zeros for
   * -1), copied bit-exactly.
   *
   * @param mapLength entries of {@code rowIdMap} (the CPU reference takes the array's length)
   */
  public static DeviceBuffer moeUnpermute(DeviceAllocator alloc, TeDtype dtype, DeviceBuffer inp, int numRows,
      int hidden, DeviceBuffer rowIdMap, int mapLength) {
    TeChecks.nonNegative("row_id_map length", mapLength);
    return moeUnpermute(alloc, dtype, inp, numRows, hidden, rowIdMap, null, mapLength, 1);
  }

  // ---------------------------------------------------------------------------------------------

  private static DeviceBuffer rowIdMap(DeviceAllocator alloc, DeviceBuffer indices, int numTokens, int topK,
      int expanded, int numOut) {
    long n = expanded;
    long temp = n == 0 ? 0 : sortTempBytes0(n);
    long keysOff = 256;
    long posInOff = keysOff + TeGpuSupport.align256(4 * n);
    long posOutOff = posInOff + TeGpuSupport.align256(4 * n);
    long tempOff = posOutOff + TeGpuSupport.align256(4 * n);
    DeviceBuffer map = alloc.allocate(4 * n, "TePermuteGpu row_id_map");
    try (DeviceBuffer scratch = alloc.allocate(tempOff + Math.max(temp, 1), "TePermuteGpu sort scratch")) {
      long s = scratch.address();
      rowIdMap0(indices.address(), numTokens, topK, numOut, s + keysOff, s + posInOff, s + posOutOff, s + tempOff, temp,
          map.address(), s, alloc.stream().handle());
      int bad = TeGpuSupport.readFlag(scratch);
      if (bad != TeGpuSupport.NONE) {
        throw duplicate(indices, bad, topK);
      }
      return map;
    } catch (RuntimeException e) {
      throw TeGpuSupport.closeAndRethrow(e, map);
    }
  }

  /** The CPU reference's message for the first token (found on the device) naming an expert twice. */
  private static IllegalArgumentException duplicate(DeviceBuffer indices, int token, int topK) {
    int[] row = indices.view(4L * token * topK, 4L * topK).toInts(topK);
    for (int a = 0; a < topK; a++) {
      for (int b = a + 1; b < topK; b++) {
        if (row[a] >= 0 && row[a] == row[b]) {
          return new IllegalArgumentException("indices: token " + token + " lists expert " + row[a]
              + " twice (slots " + a + " and " + b + "); a routing row must name distinct experts");
        }
      }
    }
    return new IllegalArgumentException("indices: token " + token + " lists an expert twice");
  }

  /** Checks numTokens/topK and returns numTokens * topK (must fit int32, as upstream's index type). */
  private static int checkShape(int numTokens, int topK) {
    TeChecks.nonNegative("num_tokens", numTokens);
    TeChecks.positive("topK", topK);
    return TeChecks.int32("num_tokens * topK", (long) numTokens * topK);
  }

  private static void checkIndices(DeviceBuffer indices, int numTokens, int topK, int expanded) {
    TeGpuSupport.fits("indices [" + numTokens + ", " + topK + "] int32", indices, 4L * expanded);
  }

  private static int resolveNumOut(int numOutTokens, int expanded) {
    if (numOutTokens < 0 || numOutTokens > expanded) {
      throw new IllegalArgumentException("num_out_tokens = " + numOutTokens + ", expected a value in [0, "
          + expanded + "] (num_tokens * topK; 0 keeps every slot)");
    }
    return numOutTokens == 0 ? expanded : numOutTokens;
  }

  private static native long sortTempBytes0(long n);

  private static native void rowIdMap0(long indices, long tokens, int topK, long numOut, long keysOut, long posIn,
      long posOut, long sortTemp, long sortTempBytes, long rowIdMap, long dupFlag, long stream);

  private static native void permuteRows0(long inp, long tokens, long rowBytes, long rowIdMap, int topK, long out,
      long stream);

  private static native void unpermute0(boolean bf16, boolean bf16Steps, long inp, long numRows, long hidden,
      long rowIdMap, long probs, long tokens, int topK, long out, long bad, long stream);
}
