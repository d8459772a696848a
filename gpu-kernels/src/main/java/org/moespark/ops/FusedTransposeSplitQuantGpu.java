package org.moespark.ops;

import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * CUDA twin of {@link FusedTransposeSplitQuant} (Paddle {@code fused_transpose_split_quant},
 * moe-ops-semantics.md §4), bit-identical to it: same scale rule (incl. {@code pow2Scales} flooring
 * the quant scale, the inf/zero-block rules), same FP8 input path
 * ({@code bf16_rne(e4m3(x) · inputScales[m][k/128])}), and the same checks (m and every
 * {@code tokensPerExpert} entry multiples of 128, summing to m; upstream's silent mis-assignment is
 * rejected, see the CPU class).
 *
 * <p>Device layout: the per-expert outputs are <b>concatenated</b> in expert order, so one buffer
 * holds them all: {@code out} is {@code Σ_e k·n_e = m·k} bytes with expert {@code e}'s
 * {@code [k, n_e]} E4M3 at byte offset {@code k·start_e}; {@code scales} is {@code [m/128, k]} fp32
 * dequantization scales, expert {@code e}'s {@code [n_e/128, k]} starting at row {@code start_e/128}
 * ({@link DeviceResult#out(int)} / {@link DeviceResult#scales(int)} give the per-expert views).
 * One pass: reads {@code m·k} bf16 (or bytes + input scales), writes {@code m·k} bytes and
 * {@code 4·k·m/128} scale bytes; one 128×128 tile per block, 16-byte transposed stores.
 */
public final class FusedTransposeSplitQuantGpu {
  private FusedTransposeSplitQuantGpu() {}

  /** Most experts one call takes (the expert table travels as a kernel parameter). */
  public static final int MAX_EXPERTS = 960;

  /** The concatenated outputs on the device, with per-expert views; close to free them. */
  public static final class DeviceResult implements AutoCloseable {
    public final int m;
    public final int k;
    private final int[] tokensPerExpert;
    private final long[] starts;
    /** All experts' {@code [k, n_e]} E4M3 outputs, concatenated ({@code m·k} bytes). */
    public final DeviceBuffer out;
    /** {@code [m/128, k]} fp32 dequantization scales. */
    public final DeviceBuffer scales;

    DeviceResult(int m, int k, int[] tokensPerExpert, DeviceBuffer out, DeviceBuffer scales) {
      this.m = m;
      this.k = k;
      this.tokensPerExpert = tokensPerExpert.clone();
      this.starts = new long[tokensPerExpert.length];
      long acc = 0;
      for (int i = 0; i < tokensPerExpert.length; i++) {
        starts[i] = acc;
        acc += tokensPerExpert[i];
      }
      this.out = out;
      this.scales = scales;
    }

    /** Tokens of each expert (a copy). */
    public int[] tokensPerExpert() {
      return tokensPerExpert.clone();
    }

    /** Expert {@code e}'s {@code [k, n_e]} E4M3 output (a view; not to be closed separately). */
    public DeviceBuffer out(int e) {
      OpChecks.inRange("FusedTransposeSplitQuantGpu", "expert", e, 0, tokensPerExpert.length - 1);
      return out.view((long) k * starts[e], (long) k * tokensPerExpert[e]);
    }

    /** Expert {@code e}'s {@code [n_e/128, k]} fp32 scales (a view). */
    public DeviceBuffer scales(int e) {
      OpChecks.inRange("FusedTransposeSplitQuantGpu", "expert", e, 0, tokensPerExpert.length - 1);
      return scales.view(4L * k * (starts[e] / FusedTransposeSplitQuant.BLOCK),
          4L * k * (tokensPerExpert[e] / FusedTransposeSplitQuant.BLOCK));
    }

    @Override
    public void close() {
      out.close();
      scales.close();
    }
  }

  /**
   * Quantizes bf16 {@code x [m, k]} into caller buffers (layout in the class comment).
   *
   * @param x {@code [m, k]} bf16 bits
   * @param out at least {@code m·k} bytes
   * @param scales at least {@code 4·(m/128)·k} bytes
   */
  public static void quantize(DeviceBuffer x, int m, int k, int[] tokensPerExpert, boolean pow2Scales,
      DeviceBuffer out, DeviceBuffer scales, CudaStream stream) {
    String op = "FusedTransposeSplitQuantGpu";
    check(op, m, k, tokensPerExpert);
    RoutingGpu.fits(op, "x", x, 2L * m * k, "[" + m + ", " + k + "] bf16");
    checkOutputs(op, m, k, out, scales);
    RoutingGpu.launchable(op, stream);
    if (m == 0 || k == 0) {
      return;
    }
    quantize0(false, x.address(), 0L, m, k, tokensPerExpert, pow2Scales, out.address(), scales.address(),
        stream.handle());
  }

  /**
   * Quantizes FP8 E4M3 {@code x [m, k]} with its fp32 input scales {@code [m, ceil(k/128)]} (each
   * element is first dequantized to bf16, as {@link FusedTransposeSplitQuant#quantizeFp8}).
   */
  public static void quantizeFp8(DeviceBuffer x, DeviceBuffer inputScales, int m, int k, int[] tokensPerExpert,
      boolean pow2Scales, DeviceBuffer out, DeviceBuffer scales, CudaStream stream) {
    String op = "FusedTransposeSplitQuantGpu";
    check(op, m, k, tokensPerExpert);
    RoutingGpu.fits(op, "x", x, (long) m * k, "[" + m + ", " + k + "] e4m3");
    int sc = OpChecks.ceilDiv(k, FusedTransposeSplitQuant.BLOCK);
    RoutingGpu.fits(op, "inputScales", inputScales, 4L * m * sc, "[" + m + ", " + sc + "] fp32");
    checkOutputs(op, m, k, out, scales);
    RoutingGpu.launchable(op, stream);
    if (m == 0 || k == 0) {
      return;
    }
    quantize0(true, x.address(), inputScales.address(), m, k, tokensPerExpert, pow2Scales, out.address(),
        scales.address(), stream.handle());
  }

  /** {@link #quantize} into new buffers from {@code alloc}, on the allocator's stream. */
  public static DeviceResult quantize(DeviceAllocator alloc, DeviceBuffer x, int m, int k, int[] tokensPerExpert,
      boolean pow2Scales) {
    DeviceResult r = allocate(alloc, m, k, tokensPerExpert);
    try {
      quantize(x, m, k, tokensPerExpert, pow2Scales, r.out, r.scales, alloc.stream());
      return r;
    } catch (RuntimeException e) {
      r.close();
      throw e;
    }
  }

  /** {@link #quantizeFp8} into new buffers from {@code alloc}, on the allocator's stream. */
  public static DeviceResult quantizeFp8(DeviceAllocator alloc, DeviceBuffer x, DeviceBuffer inputScales, int m, int k,
      int[] tokensPerExpert, boolean pow2Scales) {
    DeviceResult r = allocate(alloc, m, k, tokensPerExpert);
    try {
      quantizeFp8(x, inputScales, m, k, tokensPerExpert, pow2Scales, r.out, r.scales, alloc.stream());
      return r;
    } catch (RuntimeException e) {
      r.close();
      throw e;
    }
  }

  private static DeviceResult allocate(DeviceAllocator alloc, int m, int k, int[] tpe) {
    String op = "FusedTransposeSplitQuantGpu";
    OpChecks.nonNull(op, "alloc", alloc);
    check(op, m, k, tpe);
    DeviceBuffer out = alloc.allocate(Math.max(16, (long) m * k), "FusedTransposeSplitQuantGpu out");
    try {
      DeviceBuffer sc = alloc.allocate(Math.max(4, 4L * (m / FusedTransposeSplitQuant.BLOCK) * k),
          "FusedTransposeSplitQuantGpu scales");
      return new DeviceResult(m, k, tpe, out, sc);
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }

  private static void checkOutputs(String op, int m, int k, DeviceBuffer out, DeviceBuffer scales) {
    RoutingGpu.fits(op, "out", out, (long) m * k, "(all experts' [k, n_e], " + m + " x " + k + ") e4m3");
    long rows = m / FusedTransposeSplitQuant.BLOCK;
    RoutingGpu.fits(op, "scales", scales, 4L * rows * k, "[" + rows + ", " + k + "] fp32");
  }

  /** The CPU reference's checks (same messages), plus the expert-count limit. */
  private static void check(String op, int m, int k, int[] tpe) {
    OpChecks.nonNegative(op, "m", m);
    OpChecks.inRange(op, "k", k, 0, FusedTransposeSplitQuant.MAX_K);
    OpChecks.nonNull(op, "tokensPerExpert", tpe);
    if (tpe.length > MAX_EXPERTS) {
      throw OpChecks.fail(op, "tokensPerExpert has " + tpe.length + " experts; the GPU path takes at most "
          + MAX_EXPERTS);
    }
    int block = FusedTransposeSplitQuant.BLOCK;
    if (m % block != 0) {
      throw OpChecks.fail(op, "m (" + m + ") must be a multiple of " + block);
    }
    long sum = 0;
    for (int i = 0; i < tpe.length; i++) {
      if (tpe[i] < 0 || tpe[i] % block != 0) {
        throw OpChecks.fail(op, "tokensPerExpert[" + i + "] = " + tpe[i] + " must be a non-negative multiple of "
            + block);
      }
      sum += tpe[i];
    }
    if (sum != m) {
      throw OpChecks.fail(op, "tokensPerExpert sums to " + sum + ", expected m = " + m);
    }
    OpChecks.elements(op, "x [m, k]", m, k);
  }

  private static native void quantize0(boolean fp8, long x, long inputScales, long m, long k, int[] tokensPerExpert,
      boolean pow2, long out, long scales, long stream);
}
