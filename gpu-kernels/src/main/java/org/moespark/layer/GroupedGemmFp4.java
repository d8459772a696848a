package org.moespark.layer;

import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.formats.E8m0;
import org.moespark.formats.Fp4E2m1;
import org.moespark.formats.Fp8E4m3;
import org.moespark.model.WeightTensor;

/**
 * Grouped GEMM over MoE experts with FP4 weights dequantized inside the kernel ({@code grouped_gemm_fp4.cu}):
 * bf16 activations, weights as stored by the checkpoint — {@link WeightTensor.Format#MXFP4} (GPT-OSS: E2M1
 * codes, one E8M0 scale per 32 K columns) or {@link WeightTensor.Format#NVFP4} (ModelOpt / TensorRT: E2M1
 * codes, one E4M3 scale per 16 K columns, and the tensor's fp32 {@code weight_scale_2} as a per-row
 * {@code colScale}):
 *
 * <pre>
 *   w[e, j, c] = e2m1(B[e, j, c]) · blockScale[e, j, c / block]          (exact in bf16)
 *   acc[r, j]  = (Σ_c A[r, c] · w[e, j, c]) · colScale[e, j]              fp32; colScale optional
 *   C[r, ·]    = epilogue(acc[r, ·])                                      {@link GroupedGemm.Epilogue}
 * </pre>
 *
 * The H100 has no FP4 tensor cores: each 128×64 weight tile is read from global memory as packed codes (a
 * quarter of bf16's bytes: the resident weights and the memory traffic shrink 4×) and expanded to bf16 in
 * shared memory right before the bf16 wgmma reads it. The expansion is exact (an E2M1 value has 2 significant
 * bits, an E4M3 scale 4, an E8M0 scale is a power of two; bf16 has 8), so the result is bit for bit the bf16
 * grouped GEMM on the dequantized weights (kernel variant 1 vs the bf16 variant 3, 2 vs 4: the same wgmma
 * sequences), then {@code · colScale} in fp32.
 * Hopper only; elsewhere the call throws (dequantize to bf16 and use {@link GroupedGemm}). Deterministic.
 *
 * <p>Layouts: codes {@code [E, n, ldb]} bytes, element {@code 2i} in the low nibble of byte {@code i} (the
 * checkpoints' packing, {@link WeightTensor}); scales {@code [E, n, lds]} codes. Shapes: {@code k} a multiple
 * of 32, {@code lda} a multiple of 8 ≥ k, {@code ldb} a multiple of 16 ≥ k/2, {@code lds ≥ k / block}, A and
 * the codes 16-byte aligned; {@code n} free. {@link Epilogue#SWIGLU}'s gate/up interleaving is by rows, so
 * codes, scales and colScale rows are interleaved like the bf16 weights ({@link #interleaveGateUpRows}).
 */
public final class GroupedGemmFp4 {
  private GroupedGemmFp4() {}

  private static final String WHO = "GroupedGemmFp4";

  /** System property choosing the kernel variant ({@link #setVariant}); default 2. */
  public static final String VARIANT_PROPERTY = "moespark.gemm.fp4.variant";

  private static volatile int variant = KernelVariants.initial(GroupedGemmFp4.class, VARIANT_PROPERTY, 2, 2);

  /**
   * Chooses the kernel for every later launch in this process (benchmarks, tests): 1 = two warpgroups that load
   * (cp.async) and compute in lockstep on 128×128 tiles, the expansion of k-tile kt + 1 under the wgmma of kt
   * (the bf16 variant 3's shape: the same bits as it on the dequantized weights); 2 (the default) = TMA + warp-
   * specialized and persistent on 128×256 tiles (the bf16 variant 4's shape), the code tiles loaded by the
   * tensor-memory accelerator and expanded by the consumer warpgroups into a triple-buffered bf16 tile. Each is
   * deterministic. Above 1024 experts variant 2 runs as 1.
   */
  public static void setVariant(int v) {
    variant = KernelVariants.parse(VARIANT_PROPERTY, Integer.toString(v), 2);
  }

  /** The kernel variant in use. */
  public static int variant() {
    return variant;
  }

  /** K columns per block scale of {@code format} (32 for MXFP4, 16 for NVFP4). */
  public static int block(WeightTensor.Format format) {
    return switch (requireFp4(format)) {
      case MXFP4 -> 32;
      default -> 16;
    };
  }

  private static WeightTensor.Format requireFp4(WeightTensor.Format format) {
    if (format != WeightTensor.Format.MXFP4 && format != WeightTensor.Format.NVFP4) {
      throw new IllegalArgumentException(WHO + ": format must be MXFP4 or NVFP4, got " + format);
    }
    return format;
  }

  /**
   * Runs the grouped GEMM asynchronously on {@code alloc}'s stream.
   *
   * @param a bf16 {@code [R, lda]}, {@code R = offsets[E]}
   * @param offsets host {@code [E+1]} row offsets of the experts' segments (non-decreasing)
   * @param codes packed E2M1 {@code [E, n, ldb]} bytes
   * @param scales {@code [E, n, lds]} E8M0 (MXFP4) or E4M3 (NVFP4) codes
   * @param colScale fp32 {@code [E, n]} (NVFP4's {@code weight_scale_2} per row), or null
   * @param bias fp32 {@code [E, n]} in B's row order, or null
   * @param act the activation for SWIGLU (null otherwise)
   * @param c output {@code [R, ldc]}: fp32 for STORE_F32, else bf16; {@code ldc ≥ n} ({@code ≥ n/2} for SWIGLU)
   */
  public static void gemm(DeviceAllocator alloc, DeviceBuffer a, long lda, int[] offsets, WeightTensor.Format format,
      DeviceBuffer codes, long ldb, DeviceBuffer scales, long lds, DeviceBuffer colScale, int n, int k,
      DeviceBuffer bias, GroupedGemm.Epilogue epilogue, boolean roundBf16, GatedActivation act, DeviceBuffer c,
      long ldc) {
    if (alloc == null) {
      throw new IllegalArgumentException(WHO + ": alloc must not be null");
    }
    if (epilogue == null) {
      throw new IllegalArgumentException(WHO + ": epilogue must not be null");
    }
    int blk = block(format);
    int[] meta = GroupedGemm.meta(offsets, n);
    int experts = offsets.length - 1;
    long rows = offsets[experts];
    if (k <= 0 || k % 32 != 0) {
      throw new IllegalArgumentException(WHO + ": k must be a positive multiple of 32 (16-byte code loads), got " + k);
    }
    if (lda < k || lda % 8 != 0) {
      throw new IllegalArgumentException(WHO + ": lda must be >= k = " + k + " and a multiple of 8, got " + lda);
    }
    if (ldb < k / 2 || ldb % 16 != 0) {
      throw new IllegalArgumentException(WHO + ": ldb (code bytes per weight row) must be >= k/2 = " + k / 2
          + " and a multiple of 16, got " + ldb);
    }
    if (lds < k / blk) {
      throw new IllegalArgumentException(WHO + ": lds (scale bytes per weight row) must be >= k/" + blk + " = "
          + k / blk + " for " + format + ", got " + lds);
    }
    long outCols = epilogue == GroupedGemm.Epilogue.SWIGLU ? n / 2 : n;
    if (epilogue == GroupedGemm.Epilogue.SWIGLU) {
      if (n % 16 != 0) {
        throw new IllegalArgumentException(WHO + ": SWIGLU needs n (gate/up interleaved per 8) to be a multiple of "
            + "16, got " + n);
      }
      if (act == null) {
        throw new IllegalArgumentException(WHO + ": SWIGLU needs an activation, got null");
      }
    } else if (act != null) {
      throw new IllegalArgumentException(WHO + ": an activation is only used by SWIGLU, got epilogue " + epilogue);
    }
    if (ldc < outCols) {
      throw new IllegalArgumentException(WHO + ": ldc must be >= " + outCols + " (output columns), got " + ldc);
    }
    fits("A [R=" + rows + ", lda=" + lda + "] bf16", a, 2 * rows * lda, 16);
    fits("codes [E=" + experts + ", n=" + n + ", ldb=" + ldb + "] E2M1 pairs", codes, (long) experts * n * ldb, 16);
    fits("scales [E=" + experts + ", n=" + n + ", lds=" + lds + "]", scales, (long) experts * n * lds, 1);
    if (colScale != null) {
      fits("colScale [E=" + experts + ", n=" + n + "] fp32", colScale, 4L * experts * n, 4);
    }
    if (bias != null) {
      fits("bias [E=" + experts + ", n=" + n + "] fp32", bias, 4L * experts * n, 4);
    }
    long es = epilogue == GroupedGemm.Epilogue.STORE_F32 ? 4 : 2;
    fits("C [R=" + rows + ", ldc=" + ldc + "]", c, es * rows * ldc, 1);
    NativeLibrary.requireAvailable();
    int tiles = meta[2 * experts + 1];
    if (tiles == 0) {
      return;
    }
    try (DeviceBuffer m = alloc.uploadAsync(meta, WHO + " meta")) {
      gemm0(a.address(), lda, codes.address(), ldb, scales.address(), lds, colScale == null ? 0 : colScale.address(),
          format == WeightTensor.Format.MXFP4 ? 0 : 1, n, k, experts, m.address(), tiles,
          bias == null ? 0 : bias.address(), c.address(), ldc, epilogue.ordinal(), roundBf16,
          act != null && act.kind() == GatedActivation.Kind.SILU, act == null ? 0f : act.limit(),
          act == null ? 0f : act.alpha(), act == null ? 0f : act.beta(), rows, variant, alloc.stream().handle());
    }
  }

  private static void fits(String what, DeviceBuffer buf, long bytes, int align) {
    if (buf == null) {
      throw new IllegalArgumentException(WHO + ": " + what + " must not be null");
    }
    if (buf.size() < bytes) {
      throw new IllegalArgumentException(WHO + ": " + what + " needs " + bytes + " bytes, the device buffer has "
          + buf.size());
    }
    if (buf.address() % align != 0) {
      throw new IllegalArgumentException(WHO + ": " + what + " must be " + align + "-byte aligned, its address is "
          + buf.address());
    }
  }

  /**
   * The weights as the kernel sees them: fp32 {@code [rows, k]} with {@code w = e2m1 · blockScale} (no
   * colScale), from codes {@code [rows, ldb]} and scales {@code [rows, lds]}.
   */
  public static float[] dequantize(WeightTensor.Format format, byte[] codes, int ldb, byte[] scales, int lds, int rows,
      int k) {
    int blk = block(format);
    if (k <= 0 || ldb < (k + 1) / 2 || lds < (k + blk - 1) / blk) {
      throw new IllegalArgumentException(WHO + ".dequantize: need k > 0, ldb >= k/2, lds >= k/" + blk + ", got k = "
          + k + ", ldb = " + ldb + ", lds = " + lds);
    }
    length("codes", codes == null ? -1 : codes.length, (long) rows * ldb);
    length("scales", scales == null ? -1 : scales.length, (long) rows * lds);
    float[] w = new float[Math.toIntExact((long) rows * k)];
    for (int j = 0; j < rows; j++) {
      for (int c = 0; c < k; c++) {
        int b = codes[j * ldb + c / 2] & 0xff;
        float v = Fp4E2m1.decode((c & 1) == 0 ? b & 15 : b >>> 4);
        byte s = scales[j * lds + c / blk];
        w[j * k + c] = v * (format == WeightTensor.Format.MXFP4 ? E8m0.decode(s) : Fp8E4m3.decode(s));
      }
    }
    return w;
  }

  /**
   * The CPU definition of the accumulator (no epilogue): fp32 {@code [R, n]}, the exact sum (in double) of
   * {@code A · w} rounded to fp32, then {@code · colScale} in fp32. The GPU sums in fp32 on the tensor cores,
   * so the two agree within fp32 accumulation error, not bit for bit.
   *
   * @param a {@code [R, lda]} (bf16 values); @param colScale {@code [E, n]} or null
   */
  public static float[] reference(float[] a, int lda, int[] offsets, WeightTensor.Format format, byte[] codes,
      int ldb, byte[] scales, int lds, float[] colScale, int n, int k) {
    GroupedGemm.meta(offsets, n); // offsets and n
    if (lda < k) {
      throw new IllegalArgumentException(WHO + ".reference: lda must be >= k = " + k + ", got " + lda);
    }
    int experts = offsets.length - 1;
    int rows = offsets[experts];
    length("a", a == null ? -1 : a.length, (long) rows * lda);
    length("colScale", colScale == null ? Long.MAX_VALUE : colScale.length, (long) experts * n);
    float[] w = dequantize(format, codes, ldb, scales, lds, experts * n, k);
    float[] out = new float[Math.toIntExact((long) rows * n)];
    for (int e = 0; e < experts; e++) {
      for (int r = offsets[e]; r < offsets[e + 1]; r++) {
        for (int j = 0; j < n; j++) {
          int wr = (e * n + j) * k;
          double s = 0;
          for (int c = 0; c < k; c++) {
            s += (double) a[r * lda + c] * w[wr + c];
          }
          float acc = (float) s;
          out[r * n + j] = colScale == null ? acc : acc * colScale[e * n + j];
        }
      }
    }
    return out;
  }

  /**
   * Gate and up rows of one expert interleaved per 8 as {@link GroupedGemm.Epilogue#SWIGLU} reads them (the
   * row order of {@link GroupedGemm#interleaveGateUp}): {@code gate}, {@code up} are {@code [inter, width]}
   * (codes, scales or fp32 colScale as raw bytes: {@code width} bytes a row); the result is
   * {@code [2·pad8(inter), width]}, rows past {@code inter} zero.
   */
  public static byte[] interleaveGateUpRows(byte[] gate, byte[] up, int inter, int width) {
    if (inter <= 0 || width <= 0) {
      throw new IllegalArgumentException(WHO + ".interleaveGateUpRows: inter and width must be > 0, got " + inter
          + ", " + width);
    }
    length("gate", gate == null ? -1 : gate.length, (long) inter * width);
    length("up", up == null ? -1 : up.length, (long) inter * width);
    int ip = GroupedGemm.pad8(inter);
    byte[] out = new byte[Math.toIntExact(2L * ip * width)];
    for (int i = 0; i < inter; i++) {
      int dst = GroupedGemm.interleavedRow(i);
      System.arraycopy(gate, i * width, out, dst * width, width);
      System.arraycopy(up, i * width, out, (dst + 8) * width, width);
    }
    return out;
  }

  private static void length(String what, long got, long need) {
    if (got < need) {
      throw new IllegalArgumentException(WHO + ": " + what + " must hold " + need + " values, got "
          + (got < 0 ? "null" : Long.toString(got)));
    }
  }

  private static native void gemm0(long a, long lda, long b, long ldb, long scales, long lds, long colScale, int format,
      int n, int k, int experts, long meta, int totalTiles, long bias, long c, long ldc, int epilogue, boolean roundBf16,
      boolean actSilu, float limit, float alpha, float beta, long rows, int variant, long stream);
}
