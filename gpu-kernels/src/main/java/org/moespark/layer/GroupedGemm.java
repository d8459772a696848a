package org.moespark.layer;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.formats.Bf16;

/**
 * Grouped GEMM over MoE experts on the GPU (one launch for every expert), bf16 inputs with fp32
 * accumulation on tensor cores ({@code grouped_gemm.cu}; by default the Hopper TMA + warp-specialized
 * wgmma kernel, see {@link #setVariant}):
 *
 * <pre>
 *   for every expert e and row r in [offsets[e], offsets[e+1]):
 *     acc[r, j] = Σ_{c < k} A[r, c] · B[e, j, c]          B in nn.Linear layout [out, in] (an "NT" GEMM)
 *     C[r, ·]   = epilogue(acc[r, ·])                      {@link Epilogue}
 * </pre>
 *
 * The segments are the permute's expert-major rows ({@code MoePermuteGpu.DeviceMaps.expertRowOffsets},
 * no padding needed: ragged last tiles are masked, experts with 0 rows cost nothing). A tile
 * scheduler maps one 1-D grid onto (expert, m-tile, n-tile) from a per-expert tile prefix ({@link #meta}).
 * Every output element is one thread's fixed-order sum (no atomics): results are deterministic.
 *
 * <p>Why hand-written and not cuBLAS: cuBLAS is not installed on the build machines (the library must
 * compile wherever nvcc 13 exists) and its grouped GEMM cannot fuse the SwiGLU epilogue. The mma.sync
 * variants are the portable fallback; wgmma + TMA (performance-anchors §4.3) is the default on sm_90.
 *
 * <p>Alignment: the 16-byte cp.async path needs {@code lda}, {@code ldb} and {@code k} to be multiples
 * of 8 and 16-byte aligned buffers; anything else runs a slower element-wise load path with the same
 * results.
 */
public final class GroupedGemm {
  private GroupedGemm() {}

  /** Rows per block tile (the {@link #meta} tile prefix counts tiles of this height). */
  public static final int BLOCK_M = 128;
  /** Output columns per block tile. */
  public static final int BLOCK_N = 128;

  /** System property choosing the kernel variant ({@link #setVariant}); default 4 (TMA + wgmma where it applies). */
  public static final String VARIANT_PROPERTY = "moespark.gemm.variant";

  private static volatile int variant = KernelVariants.initial(GroupedGemm.class, VARIANT_PROPERTY, 4, 8);

  /**
   * Chooses the kernel for every later launch in this process (benchmarks, tests): 1 = mma.sync, 8 warps of
   * 64×32 on 128×128 tiles; 2 = mma.sync, 4 warps of 64×64 (the same bits as 1: every output element sees the
   * same k order; slower on the H100); 3 = Hopper wgmma (sm_90a, 2 warpgroups of m64n128k16, cp.async ring,
   * 128×128 tiles); 4 (the default) = Hopper TMA + warp-specialized wgmma (one producer warpgroup, 2
   * consumer warpgroups of m64n256k16, an mbarrier ring, 128×256 tiles, a persistent grid; bf16 outputs staged
   * per warp in shared memory and written by TMA bulk stores while the warp runs the next tile; 4 ring stages
   * for SwiGLU with at most 256 experts, else 3, to make room for the staging). Variants
   * 3 and 4 run where the device is sm_90 and {@code lda}, {@code ldb}, {@code k} are multiples of 8 (4 also
   * needs at most 1024 experts, else 3 runs); otherwise variant 1 runs. 3 and 4 are within fp32 rounding of 1,
   * not necessarily bit-identical; each variant is deterministic. 5 is a benchmark probe, not a GEMM: variant
   * 4's main loop with no epilogue (C is not written). 6, 7 and 8 give 4's bits by other means: 6 = a 4-stage ring
   * and every output stored from the accumulator fragments (variant 4 until 2026-11-23); 7 = 4 stages and the
   * TMA store one 64-column chunk at a time; 8 = 4 stages, the TMA store for SwiGLU only (at most 256 experts,
   * else 6). H100 timings of all of them: benchmarks/layer-gpu.md.
   */
  public static void setVariant(int v) {
    variant = KernelVariants.parse(VARIANT_PROPERTY, Integer.toString(v), 8);
  }

  /** The kernel variant in use. */
  public static int variant() {
    return variant;
  }

  /** What is done with the fp32 accumulator (ordinals shared with {@code GemmEpilogue} in grouped_gemm.cuh). */
  public enum Epilogue {
    /** C fp32: {@code acc (+ bias)}. */
    STORE_F32,
    /** C bf16 with {@link Compute#BF16}'s roundings: {@code v = bf16(acc)}, with a bias {@code bf16(v + bias)}. */
    STORE_BF16,
    /**
     * C bf16 activations {@code [R, n/2]}: B's rows are gate and up interleaved per 8
     * ({@link #interleaveGateUp}); {@code C[r, i] = bf16(act(g, u))} with {@link GatedActivation#apply}
     * (fp32, the gate/up bias added in fp32) or, with {@code roundBf16}, {@link GatedActivation#applyBf16}
     * after {@code bf16(bf16(acc) + bias)} (transformers' bf16 forward).
     */
    SWIGLU
  }

  /**
   * The kernel's schedule for experts with row offsets {@code offsets [E+1]} and {@code n} output
   * columns: {@code [offsets..., tilePrefix...]} ({@code 2(E+1)} ints), where
   * {@code tilePrefix[e+1] - tilePrefix[e] = ceil(rows_e / BLOCK_M) · ceil(n / BLOCK_N)}.
   *
   * @throws IllegalArgumentException for offsets that are null, shorter than 2, negative or decreasing,
   *     or a tile count above {@code Integer.MAX_VALUE}
   */
  public static int[] meta(int[] offsets, int n) {
    if (offsets == null || offsets.length < 2) {
      throw new IllegalArgumentException("GroupedGemm: offsets must be [experts + 1] with experts >= 1, got "
          + (offsets == null ? "null" : "length " + offsets.length));
    }
    if (n <= 0) {
      throw new IllegalArgumentException("GroupedGemm: n must be > 0, got " + n);
    }
    int experts = offsets.length - 1;
    if (offsets[0] < 0) {
      throw new IllegalArgumentException("GroupedGemm: offsets[0] must be >= 0, got " + offsets[0]);
    }
    int[] meta = new int[2 * (experts + 1)];
    long nt = (n + (long) BLOCK_N - 1) / BLOCK_N;
    long tiles = 0;
    for (int e = 0; e < experts; e++) {
      if (offsets[e + 1] < offsets[e]) {
        throw new IllegalArgumentException("GroupedGemm: offsets must be non-decreasing, got offsets[" + e + "] = "
            + offsets[e] + " > offsets[" + (e + 1) + "] = " + offsets[e + 1]);
      }
      meta[e] = offsets[e];
      meta[experts + 1 + e] = (int) tiles;
      tiles += (offsets[e + 1] - offsets[e] + (long) BLOCK_M - 1) / BLOCK_M * nt;
      if (tiles > Integer.MAX_VALUE) {
        throw new IllegalArgumentException("GroupedGemm: more than " + Integer.MAX_VALUE + " tiles at expert " + e);
      }
    }
    meta[experts] = offsets[experts];
    meta[2 * experts + 1] = (int) tiles;
    return meta;
  }

  /**
   * Runs the grouped GEMM asynchronously on {@code alloc}'s stream.
   *
   * @param a bf16 {@code [R, lda]} rows, {@code R = offsets[E]}; columns {@code [0, k)} are used
   * @param offsets host {@code [E+1]} row offsets of the experts' segments (non-decreasing)
   * @param b bf16 {@code [E, n, ldb]}
   * @param n output columns per expert ({@link Epilogue#SWIGLU}: gate/up interleaved, a multiple of 16)
   * @param k reduction length, {@code 1 ≤ k ≤ min(lda, ldb)}
   * @param bias fp32 {@code [E, n]} in B's row order, or null
   * @param act the activation for {@link Epilogue#SWIGLU} (null otherwise)
   * @param c output {@code [R, ldc]}: fp32 for {@link Epilogue#STORE_F32}, else bf16; {@code ldc ≥ n}
   *     ({@code ≥ n/2} for SWIGLU)
   */
  public static void gemm(DeviceAllocator alloc, DeviceBuffer a, long lda, int[] offsets, DeviceBuffer b, long ldb,
      int n, int k, DeviceBuffer bias, Epilogue epilogue, boolean roundBf16, GatedActivation act, DeviceBuffer c,
      long ldc) {
    gemm(alloc, a, lda, offsets, b, ldb, n, k, bias, epilogue, roundBf16, act, null, c, ldc);
  }

  /**
   * As {@link #gemm(DeviceAllocator, DeviceBuffer, long, int[], DeviceBuffer, long, int, int, DeviceBuffer,
   * Epilogue, boolean, GatedActivation, DeviceBuffer, long)}, with TensorRT {@code IMoELayer}'s static FP8
   * quantization of the activation ({@link Epilogue#SWIGLU} only): {@code a = e4m3(sat(a / s_e)) · s_e}
   * ({@code fcDownActivationScale} of expert e; the twin of {@link ExpertFfn}'s mulScale, bit for bit).
   *
   * @param mulScale fp32 {@code [E]} device scales (finite, > 0: the caller checks), or null for none
   */
  public static void gemm(DeviceAllocator alloc, DeviceBuffer a, long lda, int[] offsets, DeviceBuffer b, long ldb,
      int n, int k, DeviceBuffer bias, Epilogue epilogue, boolean roundBf16, GatedActivation act,
      DeviceBuffer mulScale, DeviceBuffer c, long ldc) {
    NativeLibrary.requireAvailable();
    if (alloc == null) {
      throw new IllegalArgumentException("GroupedGemm: alloc must not be null");
    }
    if (epilogue == null) {
      throw new IllegalArgumentException("GroupedGemm: epilogue must not be null");
    }
    int[] meta = meta(offsets, n);
    int experts = offsets.length - 1;
    long rows = offsets[experts];
    if (k <= 0) {
      throw new IllegalArgumentException("GroupedGemm: k must be > 0, got " + k);
    }
    if (lda < k) {
      throw new IllegalArgumentException("GroupedGemm: lda must be >= k = " + k + ", got " + lda);
    }
    if (ldb < k) {
      throw new IllegalArgumentException("GroupedGemm: ldb must be >= k = " + k + ", got " + ldb);
    }
    long outCols = epilogue == Epilogue.SWIGLU ? n / 2 : n;
    if (epilogue == Epilogue.SWIGLU) {
      if (n % 16 != 0) {
        throw new IllegalArgumentException("GroupedGemm: SWIGLU needs n (gate/up interleaved per 8) to be a "
            + "multiple of 16, got " + n);
      }
      if (act == null) {
        throw new IllegalArgumentException("GroupedGemm: SWIGLU needs an activation, got null");
      }
    } else if (act != null) {
      throw new IllegalArgumentException("GroupedGemm: an activation is only used by SWIGLU, got epilogue "
          + epilogue);
    }
    if (ldc < outCols) {
      throw new IllegalArgumentException("GroupedGemm: ldc must be >= " + outCols + " (output columns), got " + ldc);
    }
    fits("A [R=" + rows + ", lda=" + lda + "] bf16", a, 2 * rows * lda);
    fits("B [E=" + experts + ", n=" + n + ", ldb=" + ldb + "] bf16", b, 2L * experts * n * ldb);
    if (bias != null) {
      fits("bias [E=" + experts + ", n=" + n + "] fp32", bias, 4L * experts * n);
    }
    if (mulScale != null) {
      if (epilogue != Epilogue.SWIGLU) {
        throw new IllegalArgumentException("GroupedGemm: an activation scale is only used by SWIGLU, got epilogue "
            + epilogue);
      }
      fits("mulScale [E=" + experts + "] fp32", mulScale, 4L * experts);
    }
    long es = epilogue == Epilogue.STORE_F32 ? 4 : 2;
    fits("C [R=" + rows + ", ldc=" + ldc + "]", c, es * rows * ldc);
    int tiles = meta[2 * experts + 1];
    if (tiles == 0) {
      return;
    }
    try (DeviceBuffer m = alloc.uploadAsync(meta, "GroupedGemm meta")) {
      gemm0(a.address(), lda, b.address(), ldb, n, k, experts, m.address(), tiles, bias == null ? 0 : bias.address(),
          c.address(), ldc, epilogue.ordinal(), roundBf16, act != null && act.kind() == GatedActivation.Kind.SILU,
          act == null ? 0f : act.limit(), act == null ? 0f : act.alpha(), act == null ? 0f : act.beta(),
          mulScale == null ? 0 : mulScale.address(), variant, rows, alloc.stream().handle());
    }
  }

  private static void fits(String what, DeviceBuffer buf, long bytes) {
    if (buf == null) {
      throw new IllegalArgumentException("GroupedGemm: " + what + " must not be null");
    }
    if (buf.size() < bytes) {
      throw new IllegalArgumentException("GroupedGemm: " + what + " needs " + bytes + " bytes, the device buffer has "
          + buf.size());
    }
  }

  /** {@code x} rounded up to a multiple of 8 (the padded intermediate width of the device weights). */
  public static int pad8(int x) {
    return (x + 7) & ~7;
  }

  /**
   * The gate/up weights of one expert as the {@link Epilogue#SWIGLU} GEMM reads them: bf16 bits
   * {@code [2·Ip, hidden]}, {@code Ip = pad8(inter)}; row {@code 16b + r} is gate row {@code 8b + r} and row
   * {@code 16b + 8 + r} is up row {@code 8b + r} ({@code r < 8}); rows past {@code inter} are zero.
   *
   * @param gate fp32 {@code [inter, hidden]}; @param up fp32 {@code [inter, hidden]} (nn.Linear layout)
   */
  public static short[] interleaveGateUp(float[] gate, float[] up, int inter, int hidden) {
    checkMatrix("gate", gate, inter, hidden);
    checkMatrix("up", up, inter, hidden);
    int ip = pad8(inter);
    short[] out = new short[2 * ip * hidden];
    rows(inter, hidden, i -> {
      int dst = interleavedRow(i);
      Bf16.encode(gate, i * hidden, out, dst * hidden, hidden);
      Bf16.encode(up, i * hidden, out, (dst + 8) * hidden, hidden);
    });
    return out;
  }

  /** The gate/up biases in {@link #interleaveGateUp}'s row order, fp32 {@code [2·pad8(inter)]}; null = zero. */
  public static float[] interleaveBias(float[] gateBias, float[] upBias, int inter) {
    int ip = pad8(inter);
    float[] out = new float[2 * ip];
    for (int i = 0; i < inter; i++) {
      int dst = interleavedRow(i);
      out[dst] = gateBias == null ? 0f : gateBias[i];
      out[dst + 8] = upBias == null ? 0f : upBias[i];
    }
    return out;
  }

  /** Row of gate row {@code i} in the interleaved layout (its up row is 8 further). */
  static int interleavedRow(int i) {
    return (i >> 3) * 16 + (i & 7);
  }

  /**
   * One expert's down weights as bf16 bits {@code [hidden, pad8(inter)]} (columns past {@code inter} zero).
   *
   * @param down fp32 {@code [hidden, inter]}
   */
  public static short[] padDown(float[] down, int hidden, int inter) {
    checkMatrix("down", down, hidden, inter);
    int ip = pad8(inter);
    short[] out = new short[hidden * ip];
    rows(hidden, inter, r -> Bf16.encode(down, r * inter, out, r * ip, inter));
    return out;
  }

  /**
   * Runs {@code body} for rows {@code 0..rows)} of {@code cols} values each: on the common fork-join pool
   * when the matrix is large (weight upload of a big checkpoint happens once per executor, while the other
   * task threads wait for it), else inline. Rows write disjoint ranges, so the order does not matter.
   */
  static void rows(int rows, int cols, java.util.function.IntConsumer body) {
    if ((long) rows * cols < (1 << 20)) {
      for (int r = 0; r < rows; r++) {
        body.accept(r);
      }
    } else {
      java.util.stream.IntStream.range(0, rows).parallel().forEach(body);
    }
  }

  private static void checkMatrix(String name, float[] m, int rows, int cols) {
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("GroupedGemm: " + name + " must have positive dimensions, got [" + rows
          + ", " + cols + "]");
    }
    if (m == null || m.length != (long) rows * cols) {
      throw new IllegalArgumentException("GroupedGemm: " + name + " must be [" + rows + ", " + cols + "] = "
          + (long) rows * cols + " floats, got " + (m == null ? "null" : m.length));
    }
  }

  private static native void gemm0(long a, long lda, long b, long ldb, int n, int k, int experts, long meta,
      int totalTiles, long bias, long c, long ldc, int epilogue, boolean roundBf16, boolean actSilu, float limit,
      float alpha, float beta, long mulScale, int variant, long rows, long stream);
}
