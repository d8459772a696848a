package org.moespark.formats;

import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;

/**
 * The CUDA twins of this package's bulk conversions ({@code formats.cu}): each method produces exactly
 * the bits of the CPU method it names. Buffers are device memory; methods enqueue on {@code stream}
 * and return without synchronizing. Buffers are used from their start; sizes are checked against
 * {@link DeviceBuffer#size()}. Codes are laid out as on the CPU: bf16/fp16 as 2-byte little-endian
 * codes, FP8/E8M0 one byte each, E2M1 packed two per byte (element 2k in the low nibble).
 */
public final class FormatsGpu {
  private FormatsGpu() {}

  // Codec ids: formats.cuh enum Codec.
  static final int BF16 = 0;
  static final int FP16 = 1;
  static final int E4M3_SAT = 2;
  static final int E4M3_TORCH = 3;
  static final int E5M2_SAT = 4;
  static final int E5M2_TORCH = 5;
  static final int E2M1 = 6;
  static final int E8M0_TORCH = 7;

  private static void fits(DeviceBuffer b, long bytes, String what) {
    if (b == null) {
      throw new IllegalArgumentException(what + ": device buffer is null");
    }
    if (b.size() < bytes) {
      throw new IllegalArgumentException(what + ": needs " + bytes + " bytes, device buffer has " + b.size());
    }
  }

  private static void count(long n, String what) {
    if (n < 0) {
      throw new IllegalArgumentException(what + ": element count must be >= 0, got " + n);
    }
  }

  private static void ready(CudaStream stream, String what) {
    NativeLibrary.requireAvailable();
    if (stream == null) {
      throw new IllegalArgumentException(what + ": stream is null");
    }
  }

  private static void encode(int codec, long srcBytes, long dstBytes, DeviceBuffer src, DeviceBuffer dst, long n,
      CudaStream stream, String what) {
    ready(stream, what);
    count(n, what);
    fits(src, srcBytes, what + " src");
    fits(dst, dstBytes, what + " dst");
    encode0(codec, src.address(), dst.address(), n, stream.handle());
  }

  private static void decode(int codec, long srcBytes, DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream,
      String what) {
    ready(stream, what);
    count(n, what);
    fits(src, srcBytes, what + " src");
    fits(dst, 4 * n, what + " dst");
    decode0(codec, src.address(), dst.address(), n, stream.handle());
  }

  /** {@link Bf16#encode(float)} over n fp32 → n 2-byte codes. */
  public static void bf16Encode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(BF16, 4 * n, 2 * n, src, dst, n, stream, "FormatsGpu.bf16Encode");
  }

  public static void bf16Decode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    decode(BF16, 2 * n, src, dst, n, stream, "FormatsGpu.bf16Decode");
  }

  /** {@link Fp16#encode(float)} over n fp32 → n 2-byte codes. */
  public static void fp16Encode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(FP16, 4 * n, 2 * n, src, dst, n, stream, "FormatsGpu.fp16Encode");
  }

  public static void fp16Decode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    decode(FP16, 2 * n, src, dst, n, stream, "FormatsGpu.fp16Decode");
  }

  /** {@link Fp8E4m3#encodeSaturating(float)} over n fp32 → n bytes. */
  public static void e4m3EncodeSaturating(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(E4M3_SAT, 4 * n, n, src, dst, n, stream, "FormatsGpu.e4m3EncodeSaturating");
  }

  /** {@link Fp8E4m3#encodeTorch(float)} over n fp32 → n bytes. */
  public static void e4m3EncodeTorch(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(E4M3_TORCH, 4 * n, n, src, dst, n, stream, "FormatsGpu.e4m3EncodeTorch");
  }

  public static void e4m3Decode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    decode(E4M3_SAT, n, src, dst, n, stream, "FormatsGpu.e4m3Decode");
  }

  /** {@link Fp8E5m2#encodeSaturating(float)} over n fp32 → n bytes. */
  public static void e5m2EncodeSaturating(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(E5M2_SAT, 4 * n, n, src, dst, n, stream, "FormatsGpu.e5m2EncodeSaturating");
  }

  /** {@link Fp8E5m2#encodeTorch(float)} over n fp32 → n bytes. */
  public static void e5m2EncodeTorch(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(E5M2_TORCH, 4 * n, n, src, dst, n, stream, "FormatsGpu.e5m2EncodeTorch");
  }

  public static void e5m2Decode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    decode(E5M2_SAT, n, src, dst, n, stream, "FormatsGpu.e5m2Decode");
  }

  /** {@link Fp4E2m1#encode(float)} over n fp32 → ceil(n/2) packed bytes. */
  public static void e2m1Encode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(E2M1, 4 * n, (n + 1) / 2, src, dst, n, stream, "FormatsGpu.e2m1Encode");
  }

  public static void e2m1Decode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    decode(E2M1, (n + 1) / 2, src, dst, n, stream, "FormatsGpu.e2m1Decode");
  }

  /** {@link E8m0#encodeTorch(float)} over n fp32 → n bytes. */
  public static void e8m0EncodeTorch(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    encode(E8M0_TORCH, 4 * n, n, src, dst, n, stream, "FormatsGpu.e8m0EncodeTorch");
  }

  public static void e8m0Decode(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream stream) {
    decode(E8M0_TORCH, n, src, dst, n, stream, "FormatsGpu.e8m0Decode");
  }

  private static long blockedCount(long rows, long cols, int block, String what) {
    if (rows < 0 || cols < 0) {
      throw new IllegalArgumentException(what + ": shape must be non-negative, got [" + rows + ", " + cols + "]");
    }
    if (cols % block != 0) {
      throw new IllegalArgumentException(what + ": cols must be a multiple of " + block + ", got " + cols);
    }
    return Math.multiplyExact(rows, cols);
  }

  /**
   * {@link Nvfp4#quantize(float[], int, int, float, byte[], byte[])} of a row-major [rows, cols] fp32
   * matrix with a given global scale (compute it on the host with {@link Nvfp4#globalScale}).
   */
  public static void nvfp4Quantize(DeviceBuffer x, long rows, long cols, float globalScale, DeviceBuffer packed,
      DeviceBuffer scales, CudaStream stream) {
    String what = "FormatsGpu.nvfp4Quantize";
    ready(stream, what);
    long n = blockedCount(rows, cols, Nvfp4.BLOCK, what);
    if (!(globalScale >= 0f) || Float.isInfinite(globalScale)) {
      throw new IllegalArgumentException(what + ": global scale must be finite and >= 0, got " + globalScale);
    }
    fits(x, 4 * n, what + " x");
    fits(packed, n / 2, what + " packed");
    fits(scales, n / Nvfp4.BLOCK, what + " scales");
    nvfp4Quantize0(x.address(), n, globalScale, packed.address(), scales.address(), stream.handle());
  }

  /** {@link Nvfp4#dequantize(byte[], byte[], float, int, int, float[])} into out [rows, cols] fp32. */
  public static void nvfp4Dequantize(DeviceBuffer packed, DeviceBuffer scales, float globalScale, long rows, long cols,
      DeviceBuffer out, CudaStream stream) {
    String what = "FormatsGpu.nvfp4Dequantize";
    ready(stream, what);
    long n = blockedCount(rows, cols, Nvfp4.BLOCK, what);
    if (Float.isNaN(globalScale) || Float.isInfinite(globalScale)) {
      throw new IllegalArgumentException(what + ": global scale must be finite, got " + globalScale);
    }
    fits(packed, n / 2, what + " packed");
    fits(scales, n / Nvfp4.BLOCK, what + " scales");
    fits(out, 4 * n, what + " out");
    nvfp4Dequantize0(packed.address(), scales.address(), globalScale, n, out.address(), stream.handle());
  }

  /** {@link Mxfp#quantize} of a row-major [rows, cols] fp32 matrix. */
  public static void mxQuantize(Mxfp.Kind kind, DeviceBuffer x, long rows, long cols, DeviceBuffer elements,
      DeviceBuffer scales, CudaStream stream) {
    String what = "FormatsGpu.mxQuantize";
    ready(stream, what);
    if (kind == null) {
      throw new IllegalArgumentException(what + ": kind is null");
    }
    long n = blockedCount(rows, cols, Mxfp.BLOCK, what);
    fits(x, 4 * n, what + " x");
    fits(elements, kind.elementBytes(n), what + " elements");
    fits(scales, n / Mxfp.BLOCK, what + " scales");
    mxQuantize0(kind.id(), x.address(), n, elements.address(), scales.address(), stream.handle());
  }

  /** {@link Mxfp#dequantize} into out [rows, cols] fp32. */
  public static void mxDequantize(Mxfp.Kind kind, DeviceBuffer elements, DeviceBuffer scales, long rows, long cols,
      DeviceBuffer out, CudaStream stream) {
    String what = "FormatsGpu.mxDequantize";
    ready(stream, what);
    if (kind == null) {
      throw new IllegalArgumentException(what + ": kind is null");
    }
    long n = blockedCount(rows, cols, Mxfp.BLOCK, what);
    fits(elements, kind.elementBytes(n), what + " elements");
    fits(scales, n / Mxfp.BLOCK, what + " scales");
    fits(out, 4 * n, what + " out");
    mxDequantize0(kind.id(), elements.address(), scales.address(), n, out.address(), stream.handle());
  }

  private static long scaleCount(long rows, long cols, int blockRows, int blockCols, String what) {
    if (rows < 0 || cols < 0) {
      throw new IllegalArgumentException(what + ": shape must be non-negative, got [" + rows + ", " + cols + "]");
    }
    if (blockRows < 1 || blockCols < 1) {
      throw new IllegalArgumentException(what + ": block must be at least 1x1, got " + blockRows + "x" + blockCols);
    }
    return Math.multiplyExact((rows + blockRows - 1) / blockRows, (cols + blockCols - 1) / blockCols);
  }

  /** {@link BlockFp8#quantize} (Paddle rule) of a row-major [rows, cols] fp32 matrix. */
  public static void blockFp8Quantize(DeviceBuffer x, long rows, long cols, int blockRows, int blockCols, boolean pow2,
      DeviceBuffer q, DeviceBuffer scaleInv, CudaStream stream) {
    blockFp8Quantize(BlockFp8.ScaleRule.PADDLE, x, rows, cols, blockRows, blockCols, pow2, q, scaleInv, stream);
  }

  /** {@link BlockFp8#quantize(BlockFp8.ScaleRule, float[], int, int, int, int, boolean, byte[], float[])}. */
  public static void blockFp8Quantize(BlockFp8.ScaleRule rule, DeviceBuffer x, long rows, long cols, int blockRows,
      int blockCols, boolean pow2, DeviceBuffer q, DeviceBuffer scaleInv, CudaStream stream) {
    String what = "FormatsGpu.blockFp8Quantize";
    ready(stream, what);
    if (rule == null) {
      throw new IllegalArgumentException(what + ": rule is null");
    }
    long scales = scaleCount(rows, cols, blockRows, blockCols, what);
    long n = Math.multiplyExact(rows, cols);
    fits(x, 4 * n, what + " x");
    fits(q, n, what + " q");
    fits(scaleInv, 4 * scales, what + " scaleInv");
    blockFp8Quantize0(rule.id(), x.address(), rows, cols, blockRows, blockCols, pow2, q.address(),
        scaleInv.address(), stream.handle());
  }

  /** {@link BlockFp8#dequantize} into out [rows, cols] fp32. */
  public static void blockFp8Dequantize(DeviceBuffer q, DeviceBuffer scaleInv, long rows, long cols, int blockRows,
      int blockCols, DeviceBuffer out, CudaStream stream) {
    String what = "FormatsGpu.blockFp8Dequantize";
    ready(stream, what);
    long scales = scaleCount(rows, cols, blockRows, blockCols, what);
    long n = Math.multiplyExact(rows, cols);
    fits(q, n, what + " q");
    fits(scaleInv, 4 * scales, what + " scaleInv");
    fits(out, 4 * n, what + " out");
    blockFp8Dequantize0(q.address(), scaleInv.address(), rows, cols, blockRows, blockCols, out.address(),
        stream.handle());
  }

  private static native void encode0(int codec, long src, long dst, long n, long stream);

  private static native void decode0(int codec, long src, long dst, long n, long stream);

  private static native void nvfp4Quantize0(long x, long n, float globalScale, long packed, long scales, long stream);

  private static native void nvfp4Dequantize0(long packed, long scales, float globalScale, long n, long out,
      long stream);

  private static native void mxQuantize0(int kind, long x, long n, long elements, long scales, long stream);

  private static native void mxDequantize0(int kind, long elements, long scales, long n, long out, long stream);

  private static native void blockFp8Quantize0(int rule, long x, long rows, long cols, int blockRows, int blockCols,
      boolean pow2, long q, long scaleInv, long stream);

  private static native void blockFp8Dequantize0(long q, long scaleInv, long rows, long cols, int blockRows,
      int blockCols, long out, long stream);
}
