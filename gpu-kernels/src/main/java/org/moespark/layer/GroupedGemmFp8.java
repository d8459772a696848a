package org.moespark.layer;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.formats.BlockFp8;
import org.moespark.formats.Fp8E4m3;

/**
 * Grouped FP8 GEMM over MoE experts with DeepSeek-V3 block scales ({@code grouped_gemm_fp8.cu}): e4m3
 * activations with one fp32 scale per row per 128 columns of K (1×128, what
 * {@link org.moespark.formats.ActQuantGpu} produces), e4m3 weights with one fp32 scale per 128×128 block
 * (DeepSeek-V3's {@code weight_scale_inv}, {@link BlockFp8#quantizeWeights}):
 *
 * <pre>
 *   for every expert e, row r in [offsets[e], offsets[e+1]), column j < n, kb = 0 .. ceil(k/128) - 1:
 *     acc[r, j] = Σ_kb ( Σ_{c in kb} A[r, c] · B[e, j, c] ) · sa[r, kb] · sb[e, j/128, kb]     fp32
 *     C[r, ·]   = epilogue(acc[r, ·])             the bf16 GEMM's epilogues ({@link GroupedGemm.Epilogue})
 * </pre>
 *
 * Scales are dequantization scales ({@code x ≈ q · s}). Hopper only: wgmma m64n128k32 e4m3 (sm_90a) from
 * 128-byte-swizzled shared memory, 128×256 tiles (variant 5, the default; 128×128 in variants 1–4 on {@link
 * GroupedGemm}'s tile scheduler, {@link GroupedGemm#meta}), a warp-specialized TMA/mbarrier pipeline ({@link
 * #setVariant}); each 128-k
 * partial sum leaves the tensor core and is promoted into a separate fp32 accumulator with its two scales
 * (DeepGEMM's technique: the FP8 tensor core accumulates with reduced precision inside a chain of
 * instructions). On other devices the call throws (no fallback: use
 * {@link GroupedGemm} in bf16). Deterministic: fixed summation order, no atomics.
 *
 * <p>Shapes: {@code k} must be a multiple of 16 (16-byte loads; a ragged last 128-block is zero-padded
 * inside the kernel and its scale covers the columns that exist, as {@link BlockFp8} and ActQuantGpu
 * define ragged blocks), {@code lda}, {@code ldb} multiples of 16 and all buffers 16-byte aligned; other
 * values are rejected with the reason. {@code n} is free (ragged last n-tile masked).
 *
 * <p>{@link #reference} is the CPU definition: the same formula with each 128-block's sum of exact e4m3
 * products in fp32 in k order. The GPU's block sums differ in the last bits (the tensor core's order and
 * internal precision), so GPU and CPU agree within a small relative tolerance, not bit for bit.
 */
public final class GroupedGemmFp8 {
  private GroupedGemmFp8() {}

  /** System property choosing the kernel variant ({@link #setVariant}); default 5. */
  public static final String VARIANT_PROPERTY = "moespark.gemm.fp8.variant";

  private static volatile int variant = KernelVariants.initial(GroupedGemmFp8.class, VARIANT_PROPERTY, 5, 11);

  /**
   * Chooses the kernel for every later launch in this process (benchmarks, tests): 1 = two warpgroups that
   * load (cp.async) and compute in lockstep, a block barrier per 128-k block, scales read from global
   * memory at the promotion; 2 = warp-specialized: a producer warpgroup streams tiles and scales into a
   * 5-stage ring with cp.async and signals each stage on an mbarrier, two consumer warpgroups run
   * independently (one promotes while the other's wgmma group runs); 3 = 2 with the tiles loaded by the
   * tensor-memory accelerator (bulk tensor copies, the producer never waits for data) and the epilogue
   * staged through shared memory (gemm_common.cuh's staged_epilogue, as the bf16 variant 4); 4 = 3 on a
   * persistent grid (one block per SM looping over tiles, so the producer fills the next tile's stages
   * during the epilogue); 5 (the default) = 4 with 128×256 tiles (half the A traffic per FLOP; each k-block
   * runs as two 128-column halves through one partial accumulator, registers rebalanced to the consumers;
   * more than 1024 experts fall back to 4; since 2026-11-23 (seventh session) a 3-stage ring whose bf16 outputs
   * are staged per warp and written by TMA bulk stores while the warp runs the next tile, as the bf16 GEMM's
   * variant 4); 6 = 5 with a 4-stage ring and every output stored from the fragments (variant 5 before). The
   * same instructions and promotion order in all six: the same bits. 7-10 are timing probes of variant 5 that
   * store nothing ({@code GemmTailBench}): 7 = without the epilogue, 8 = 7 without the promotion (the k-blocks'
   * wgmma groups chained into one accumulator), 9 = 8 with m64n256k32 instructions, 10 = 7 without scale loads;
   * 11 = 128×128 tiles whose consumers hold two partial accumulators, so that each k-block's promotion runs while
   * the next k-block's wgmma group is in flight (the same bits as 1-6; more than 1024 experts fall back to 4).
   */
  public static void setVariant(int v) {
    variant = KernelVariants.parse(VARIANT_PROPERTY, Integer.toString(v), 11);
  }

  /** The kernel variant in use. */
  public static int variant() {
    return variant;
  }

  /** The scale block edge (K columns per activation scale; rows and K columns per weight scale). */
  public static final int BLOCK = BlockFp8.BLOCK;

  /** Scale blocks along {@code x}: {@code ceil(x / 128)}. */
  public static int blocks(int x) {
    return (x + BLOCK - 1) / BLOCK;
  }

  /**
   * Runs the grouped FP8 GEMM asynchronously on {@code alloc}'s stream.
   *
   * @param a e4m3 {@code [R, lda]}, {@code R = offsets[E]}; columns {@code [0, k)} are used
   * @param aScales fp32 {@code [R, ceil(k/128)]}
   * @param offsets host {@code [E+1]} row offsets of the experts' segments (non-decreasing)
   * @param b e4m3 {@code [E, n, ldb]}
   * @param bScales fp32 {@code [E, ceil(n/128), ceil(k/128)]}
   * @param n output columns per expert ({@link GroupedGemm.Epilogue#SWIGLU}: gate/up interleaved per 8, a
   *     multiple of 16)
   * @param k reduction length, a multiple of 16, {@code k ≤ min(lda, ldb)}
   * @param bias fp32 {@code [E, n]} in B's row order, or null
   * @param act the activation for SWIGLU (null otherwise)
   * @param c output {@code [R, ldc]}: fp32 for STORE_F32, else bf16; {@code ldc ≥ n} ({@code ≥ n/2} for SWIGLU)
   */
  public static void gemm(DeviceAllocator alloc, DeviceBuffer a, long lda, DeviceBuffer aScales, int[] offsets,
      DeviceBuffer b, long ldb, DeviceBuffer bScales, int n, int k, DeviceBuffer bias, GroupedGemm.Epilogue epilogue,
      boolean roundBf16, GatedActivation act, DeviceBuffer c, long ldc) {
    gemm(alloc, a, lda, aScales, offsets, b, ldb, bScales, n, k, bias, epilogue, roundBf16, act, null, c, ldc);
  }

  /**
   * As {@link #gemm(DeviceAllocator, DeviceBuffer, long, DeviceBuffer, int[], DeviceBuffer, long, DeviceBuffer,
   * int, int, DeviceBuffer, GroupedGemm.Epilogue, boolean, GatedActivation, DeviceBuffer, long)} with TensorRT's
   * static FP8 Q/DQ of the SWIGLU activation ({@link GroupedGemm}'s {@code mulScale}, fp32 {@code [E]}, or null).
   */
  public static void gemm(DeviceAllocator alloc, DeviceBuffer a, long lda, DeviceBuffer aScales, int[] offsets,
      DeviceBuffer b, long ldb, DeviceBuffer bScales, int n, int k, DeviceBuffer bias, GroupedGemm.Epilogue epilogue,
      boolean roundBf16, GatedActivation act, DeviceBuffer mulScale, DeviceBuffer c, long ldc) {
    if (epilogue == null) {
      throw new IllegalArgumentException("GroupedGemmFp8: epilogue must not be null");
    }
    int[] meta = GroupedGemm.meta(offsets, n);
    int experts = offsets.length - 1;
    long rows = offsets[experts];
    checkShape(k, lda, ldb);
    long outCols = epilogue == GroupedGemm.Epilogue.SWIGLU ? n / 2 : n;
    if (epilogue == GroupedGemm.Epilogue.SWIGLU) {
      if (n % 16 != 0) {
        throw new IllegalArgumentException("GroupedGemmFp8: SWIGLU needs n (gate/up interleaved per 8) to be a "
            + "multiple of 16, got " + n);
      }
      if (act == null) {
        throw new IllegalArgumentException("GroupedGemmFp8: SWIGLU needs an activation, got null");
      }
    } else if (act != null) {
      throw new IllegalArgumentException("GroupedGemmFp8: an activation is only used by SWIGLU, got epilogue "
          + epilogue);
    }
    if (ldc < outCols) {
      throw new IllegalArgumentException("GroupedGemmFp8: ldc must be >= " + outCols + " (output columns), got "
          + ldc);
    }
    int kb = blocks(k);
    fits("A [R=" + rows + ", lda=" + lda + "] e4m3", a, rows * lda, true);
    fits("aScales [R=" + rows + ", " + kb + "] fp32", aScales, 4L * rows * kb, false);
    fits("B [E=" + experts + ", n=" + n + ", ldb=" + ldb + "] e4m3", b, (long) experts * n * ldb, true);
    fits("bScales [E=" + experts + ", " + blocks(n) + ", " + kb + "] fp32", bScales, 4L * experts * blocks(n) * kb,
        false);
    if (bias != null) {
      fits("bias [E=" + experts + ", n=" + n + "] fp32", bias, 4L * experts * n, false);
    }
    if (mulScale != null) {
      if (epilogue != GroupedGemm.Epilogue.SWIGLU) {
        throw new IllegalArgumentException("GroupedGemmFp8: an activation scale is only used by SWIGLU, got epilogue "
            + epilogue);
      }
      fits("mulScale [E=" + experts + "] fp32", mulScale, 4L * experts, false);
    }
    long es = epilogue == GroupedGemm.Epilogue.STORE_F32 ? 4 : 2;
    fits("C [R=" + rows + ", ldc=" + ldc + "]", c, es * rows * ldc, false);
    if (alloc == null) {
      throw new IllegalArgumentException("GroupedGemmFp8: alloc must not be null");
    }
    NativeLibrary.requireAvailable();
    int tiles = meta[2 * experts + 1];
    if (tiles == 0) {
      return;
    }
    try (DeviceBuffer m = alloc.uploadAsync(meta, "GroupedGemmFp8 meta")) {
      gemm0(a.address(), rows, lda, aScales.address(), b.address(), ldb, bScales.address(), n, k, experts, m.address(),
          tiles, bias == null ? 0 : bias.address(), c.address(), ldc, epilogue.ordinal(), roundBf16,
          act != null && act.kind() == GatedActivation.Kind.SILU, act == null ? 0f : act.limit(),
          act == null ? 0f : act.alpha(), act == null ? 0f : act.beta(), mulScale == null ? 0 : mulScale.address(),
          variant, alloc.stream().handle());
    }
  }

  private static void checkShape(int k, long lda, long ldb) {
    if (k <= 0 || k % 16 != 0) {
      throw new IllegalArgumentException("GroupedGemmFp8: k must be a positive multiple of 16 (16-byte e4m3 loads), "
          + "got " + k);
    }
    if (lda < k || lda % 16 != 0) {
      throw new IllegalArgumentException("GroupedGemmFp8: lda must be >= k = " + k + " and a multiple of 16, got "
          + lda);
    }
    if (ldb < k || ldb % 16 != 0) {
      throw new IllegalArgumentException("GroupedGemmFp8: ldb must be >= k = " + k + " and a multiple of 16, got "
          + ldb);
    }
  }

  private static void fits(String what, DeviceBuffer buf, long bytes, boolean aligned16) {
    if (buf == null) {
      throw new IllegalArgumentException("GroupedGemmFp8: " + what + " must not be null");
    }
    if (buf.size() < bytes) {
      throw new IllegalArgumentException("GroupedGemmFp8: " + what + " needs " + bytes
          + " bytes, the device buffer has " + buf.size());
    }
    long align = aligned16 ? 16 : 4;
    if (buf.address() % align != 0) {
      throw new IllegalArgumentException("GroupedGemmFp8: " + what + " must be " + align
          + "-byte aligned, its address is " + buf.address());
    }
  }

  /**
   * The CPU definition of the accumulator (no epilogue): fp32 {@code [R, n]}, each 128-block's sum of the
   * (exact) e4m3 products in fp32 in k order, then {@code acc += block · (sa · sb)} in fp32, blocks in
   * order. Any {@code k ≥ 1} (the GPU needs multiples of 16).
   *
   * @param a e4m3 codes {@code [R, lda]}; @param aScales {@code [R, ceil(k/128)]}
   * @param b e4m3 codes {@code [E, n, ldb]}; @param bScales {@code [E, ceil(n/128), ceil(k/128)]}
   */
  public static float[] reference(byte[] a, int lda, float[] aScales, int[] offsets, byte[] b, int ldb,
      float[] bScales, int n, int k) {
    GroupedGemm.meta(offsets, n); // offsets and n
    if (k <= 0 || lda < k || ldb < k) {
      throw new IllegalArgumentException("GroupedGemmFp8.reference: need 1 <= k <= min(lda, ldb), got k = " + k
          + ", lda = " + lda + ", ldb = " + ldb);
    }
    int experts = offsets.length - 1;
    int rows = offsets[experts];
    int kb = blocks(k);
    int nb = blocks(n);
    length("a", a == null ? -1 : a.length, (long) rows * lda);
    length("aScales", aScales == null ? -1 : aScales.length, (long) rows * kb);
    length("b", b == null ? -1 : b.length, (long) experts * n * ldb);
    length("bScales", bScales == null ? -1 : bScales.length, (long) experts * nb * kb);
    float[] out = new float[Math.toIntExact((long) rows * n)];
    float[] ar = new float[k];
    float[] br = new float[k];
    for (int e = 0; e < experts; e++) {
      for (int r = offsets[e]; r < offsets[e + 1]; r++) {
        for (int c = 0; c < k; c++) {
          ar[c] = Fp8E4m3.decode(a[r * lda + c]);
        }
        for (int j = 0; j < n; j++) {
          int brow = (e * n + j) * ldb;
          for (int c = 0; c < k; c++) {
            br[c] = Fp8E4m3.decode(b[brow + c]);
          }
          float acc = 0f;
          for (int q = 0; q < kb; q++) {
            float part = 0f;
            int end = Math.min(k, (q + 1) * BLOCK);
            for (int c = q * BLOCK; c < end; c++) {
              part += ar[c] * br[c];
            }
            acc += part * (aScales[r * kb + q] * bScales[(e * nb + j / BLOCK) * kb + q]);
          }
          out[r * n + j] = acc;
        }
      }
    }
    return out;
  }

  private static void length(String what, long got, long need) {
    if (got < need) {
      throw new IllegalArgumentException("GroupedGemmFp8.reference: " + what + " must hold " + need + " values, got "
          + (got < 0 ? "null" : Long.toString(got)));
    }
  }

  /**
   * Quantizes {@code experts} weight matrices {@code [n, k]} (fp32, row-major, one after the other) into
   * e4m3 with 128×128 block scales: {@link BlockFp8#quantizeWeights} per expert (Paddle's rule without
   * pow2: {@code s = 448/amax}, stored {@code 1/s}; transformers' {@code Fp8Quantize}).
   *
   * @param q out, {@code experts·n·k} codes; @param scales out, {@code experts·ceil(n/128)·ceil(k/128)}
   */
  public static void quantizeWeights(float[] w, int experts, int n, int k, byte[] q, float[] scales) {
    if (experts <= 0 || n <= 0 || k <= 0) {
      throw new IllegalArgumentException("GroupedGemmFp8.quantizeWeights: experts, n, k must be > 0, got " + experts
          + ", " + n + ", " + k);
    }
    long per = (long) n * k;
    int sper = blocks(n) * blocks(k);
    length("w", w == null ? -1 : w.length, experts * per);
    length("q", q == null ? -1 : q.length, experts * per);
    length("scales", scales == null ? -1 : scales.length, (long) experts * sper);
    float[] one = new float[Math.toIntExact(per)];
    byte[] q1 = new byte[one.length];
    float[] s1 = new float[sper];
    for (int e = 0; e < experts; e++) {
      System.arraycopy(w, Math.toIntExact(e * per), one, 0, one.length);
      BlockFp8.quantizeWeights(one, n, k, false, q1, s1);
      System.arraycopy(q1, 0, q, Math.toIntExact(e * per), q1.length);
      System.arraycopy(s1, 0, scales, e * sper, sper);
    }
  }

  private static native void gemm0(long a, long aRows, long lda, long aScales, long b, long ldb, long bScales, int n, int k,
      int experts, long meta, int totalTiles, long bias, long c, long ldc, int epilogue, boolean roundBf16,
      boolean actSilu, float limit, float alpha, float beta, long mulScale, int variant, long stream);
}
