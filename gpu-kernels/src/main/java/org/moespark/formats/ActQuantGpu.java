package org.moespark.formats;

import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * FP8 E4M3 activation quantization with 1×128 groups (one scale per token per 128 consecutive
 * columns: DeepSeek-V3 {@code act_quant}, Paddle's per-token-per-128 FP8 activations) on the GPU.
 * A dedicated fast path of {@link FormatsGpu#blockFp8Quantize} for block 1×128, bit-identical to
 * {@link BlockFp8#quantize(BlockFp8.ScaleRule, float[], int, int, int, int, boolean, byte[], float[])}
 * with {@code blockRows = 1, blockCols = 128} (both scale rules, pow2 on or off, a ragged last group
 * when {@code cols} is not a multiple of 128).
 *
 * <p>Input fp32 or bf16 bits ({@link Input}); bf16 is widened exactly, so the reference for bf16 input
 * is {@link BlockFp8} on the decoded values. Outputs: {@code q [rows, cols]} E4M3 codes and
 * {@code scales [rows, ceil(cols/128)]} fp32 <b>dequantization</b> scales ({@code x ≈ q · scale}).
 * 16 threads per group, 16-byte loads and 8-byte stores when {@code cols % 8 == 0} and the buffers are
 * aligned (scalar otherwise); one pass over the data: reads {@code rows·cols·bytes}, writes
 * {@code rows·cols + 4·rows·ceil(cols/128)} bytes. Asynchronous on the given stream.
 */
public final class ActQuantGpu {
  private ActQuantGpu() {}

  /** Columns per scale. */
  public static final int GROUP = BlockFp8.BLOCK;

  /** Element type of the input activations. */
  public enum Input {
    /** fp32, 4 bytes. */
    F32(4),
    /** bf16 bits, 2 bytes. */
    BF16(2);

    /** Bytes per element. */
    public final int bytes;

    Input(int bytes) {
      this.bytes = bytes;
    }
  }

  /** Scale groups per row: {@code ceil(cols / 128)}. */
  public static long scaleCols(long cols) {
    return (cols + GROUP - 1) / GROUP;
  }

  /**
   * Quantizes {@code x [rows, cols]} into {@code q} and {@code scales}.
   *
   * @param rule {@link BlockFp8.ScaleRule#PADDLE} (scale = 1/s, s = 448/amax, pow2 floors s) or
   *     {@link BlockFp8.ScaleRule#DEEPSEEK} (scale = max(amax, 1e-4)/448, pow2 = ue8m0 ceils it)
   * @param x {@code [rows, cols]} of {@code input}
   * @param q out, {@code rows·cols} bytes
   * @param scales out, {@code rows·ceil(cols/128)} fp32
   */
  public static void quantize(BlockFp8.ScaleRule rule, Input input, DeviceBuffer x, long rows, long cols, boolean pow2,
      DeviceBuffer q, DeviceBuffer scales, CudaStream stream) {
    String op = "ActQuantGpu.quantize";
    if (rule == null) {
      throw new IllegalArgumentException(op + ": rule must not be null");
    }
    if (input == null) {
      throw new IllegalArgumentException(op + ": input must not be null");
    }
    if (rows < 0 || cols < 0) {
      throw new IllegalArgumentException(op + ": shape must be non-negative, got [" + rows + ", " + cols + "]");
    }
    long n = Math.multiplyExact(rows, cols);
    String shape = "[" + rows + ", " + cols + "]";
    fits(op, "x " + shape + " " + input, x, Math.multiplyExact(n, input.bytes));
    fits(op, "q " + shape + " e4m3", q, n);
    fits(op, "scales [" + rows + ", " + scaleCols(cols) + "] fp32", scales,
        Math.multiplyExact(4L * rows, scaleCols(cols)));
    if (stream == null) {
      throw new IllegalArgumentException(op + ": stream must not be null");
    }
    NativeLibrary.requireAvailable();
    quantize0(rule.id(), input == Input.BF16, x.address(), rows, cols, pow2, q.address(), scales.address(),
        stream.handle());
  }

  /** The quantized activations: {@code q [rows, cols]} E4M3 and {@code scales [rows, ceil(cols/128)]} fp32. */
  public record DeviceResult(long rows, long cols, DeviceBuffer q, DeviceBuffer scales) implements AutoCloseable {
    @Override
    public void close() {
      q.close();
      scales.close();
    }
  }

  /** {@link #quantize} into new buffers from {@code alloc}, on the allocator's stream. */
  public static DeviceResult quantize(DeviceAllocator alloc, BlockFp8.ScaleRule rule, Input input, DeviceBuffer x,
      long rows, long cols, boolean pow2) {
    if (alloc == null) {
      throw new IllegalArgumentException("ActQuantGpu.quantize: alloc must not be null");
    }
    if (rows < 0 || cols < 0) {
      throw new IllegalArgumentException("ActQuantGpu.quantize: shape must be non-negative, got [" + rows + ", "
          + cols + "]");
    }
    DeviceBuffer q = alloc.allocate(Math.max(1, Math.multiplyExact(rows, cols)), "ActQuantGpu q");
    DeviceBuffer s = null;
    try {
      s = alloc.allocate(Math.max(4, 4L * rows * scaleCols(cols)), "ActQuantGpu scales");
      quantize(rule, input, x, rows, cols, pow2, q, s, alloc.stream());
      return new DeviceResult(rows, cols, q, s);
    } catch (RuntimeException e) {
      q.close();
      if (s != null) {
        s.close();
      }
      throw e;
    }
  }

  private static void fits(String op, String name, DeviceBuffer b, long bytes) {
    if (b == null) {
      throw new IllegalArgumentException(op + ": " + name + " must not be null");
    }
    if (b.size() < bytes) {
      throw new IllegalArgumentException(op + ": " + name + " needs " + bytes + " bytes but the device buffer has "
          + b.size());
    }
  }

  private static native void quantize0(int rule, boolean bf16, long x, long rows, long cols, boolean pow2, long q,
      long scales, long stream);
}
