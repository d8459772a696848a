package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.testing.DeviceTest;
import org.moespark.testing.Tolerance;

/** Every GPU conversion must produce exactly the CPU's bits. */
@Tag("gpu")
class FormatsGpuTest extends DeviceTest {
  /** Special floats, every bf16 upper half with a few lower halves, and random floats of all exponents. */
  private static float[] inputs() {
    float[] probes = FormatReference.probes(3, 7, 0x7E, 17, 0);
    float[] probes5 = FormatReference.probes(2, 15, 0x7B, 18, 0);
    float[] probes16 = FormatReference.probes(10, 15, 0x7BFF, 19, 0, 3);
    float[] probes4 = FormatReference.probes(1, 1, 7, 20, 0);
    int[] lowers = {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x1234};
    Random r = new Random(21);
    int extra = 200_000;
    float[] x = new float[probes.length + probes5.length + probes16.length + probes4.length
        + 0x10000 * lowers.length + extra];
    int k = 0;
    for (float[] p : new float[][] {probes, probes5, probes16, probes4}) {
      System.arraycopy(p, 0, x, k, p.length);
      k += p.length;
    }
    for (int upper = 0; upper < 0x10000; upper++) {
      for (int low : lowers) {
        x[k++] = Float.intBitsToFloat((upper << 16) | low);
      }
    }
    while (k < x.length) {
      x[k++] = Float.intBitsToFloat(r.nextInt());
    }
    return x;
  }

  private static float[] bits(int[] raw) {
    float[] f = new float[raw.length];
    for (int i = 0; i < raw.length; i++) {
      f[i] = Float.intBitsToFloat(raw[i]);
    }
    return f;
  }

  interface GpuEncode {
    void run(DeviceBuffer src, DeviceBuffer dst, long n, CudaStream s);
  }

  private static byte[] gpuEncodeBytes(GpuEncode op, float[] x, long outBytes) {
    try (DeviceBuffer src = alloc.upload(x, "x"); DeviceBuffer dst = alloc.allocate(outBytes, "codes")) {
      op.run(src, dst, x.length, stream);
      return dst.toBytes((int) outBytes);
    }
  }

  @Test
  void bf16AndFp16EncodeAndDecodeAllCodes() {
    float[] x = inputs();
    short[] cpuBf = new short[x.length];
    short[] cpuH = new short[x.length];
    Bf16.encode(x, 0, cpuBf, 0, x.length);
    Fp16.encode(x, 0, cpuH, 0, x.length);
    try (DeviceBuffer src = alloc.upload(x, "x"); DeviceBuffer dst = alloc.allocate(2L * x.length, "codes")) {
      FormatsGpu.bf16Encode(src, dst, x.length, stream);
      assertArrayEquals(cpuBf, dst.toShorts(x.length), "bf16 encode");
      FormatsGpu.fp16Encode(src, dst, x.length, stream);
      assertArrayEquals(cpuH, dst.toShorts(x.length), "fp16 encode");
    }
    short[] all = new short[0x10000];
    for (int c = 0; c < all.length; c++) {
      all[c] = (short) c;
    }
    float[] cpuB = new float[all.length];
    float[] cpuF = new float[all.length];
    Bf16.decode(all, 0, cpuB, 0, all.length);
    Fp16.decode(all, 0, cpuF, 0, all.length);
    try (DeviceBuffer src = alloc.upload(all, "codes"); DeviceBuffer dst = alloc.allocate(4L * all.length, "x")) {
      FormatsGpu.bf16Decode(src, dst, all.length, stream);
      Tolerance.assertBitEqual(dst.toFloats(all.length), cpuB, "bf16 decode");
      FormatsGpu.fp16Decode(src, dst, all.length, stream);
      Tolerance.assertBitEqual(dst.toFloats(all.length), cpuF, "fp16 decode");
    }
  }

  @Test
  void byteCodecsEncodeAndDecodeAllCodes() {
    float[] x = inputs();
    int n = x.length;
    byte[] cpu = new byte[n];
    Fp8E4m3.encodeSaturating(x, 0, cpu, 0, n);
    assertArrayEquals(cpu, gpuEncodeBytes(FormatsGpu::e4m3EncodeSaturating, x, n), "e4m3 saturating");
    Fp8E4m3.encodeTorch(x, 0, cpu, 0, n);
    assertArrayEquals(cpu, gpuEncodeBytes(FormatsGpu::e4m3EncodeTorch, x, n), "e4m3 torch");
    Fp8E5m2.encodeSaturating(x, 0, cpu, 0, n);
    assertArrayEquals(cpu, gpuEncodeBytes(FormatsGpu::e5m2EncodeSaturating, x, n), "e5m2 saturating");
    Fp8E5m2.encodeTorch(x, 0, cpu, 0, n);
    assertArrayEquals(cpu, gpuEncodeBytes(FormatsGpu::e5m2EncodeTorch, x, n), "e5m2 torch");
    E8m0.encodeTorch(x, 0, cpu, 0, n);
    assertArrayEquals(cpu, gpuEncodeBytes(FormatsGpu::e8m0EncodeTorch, x, n), "e8m0 torch");
    for (int odd : new int[] {n, n - 1}) {
      float[] y = java.util.Arrays.copyOf(x, odd);
      byte[] packed = new byte[(odd + 1) / 2];
      Fp4E2m1.encode(y, 0, packed, 0, odd);
      assertArrayEquals(packed, gpuEncodeBytes(FormatsGpu::e2m1Encode, y, packed.length), "e2m1 n=" + odd);
    }

    byte[] all = new byte[256];
    for (int c = 0; c < 256; c++) {
      all[c] = (byte) c;
    }
    float[] ref = new float[512];
    try (DeviceBuffer src = alloc.upload(all, "codes"); DeviceBuffer dst = alloc.allocate(4L * 512, "x")) {
      Fp8E4m3.decode(all, 0, ref, 0, 256);
      FormatsGpu.e4m3Decode(src, dst, 256, stream);
      Tolerance.assertBitEqual(dst.toFloats(256), java.util.Arrays.copyOf(ref, 256), "e4m3 decode");
      Fp8E5m2.decode(all, 0, ref, 0, 256);
      FormatsGpu.e5m2Decode(src, dst, 256, stream);
      Tolerance.assertBitEqual(dst.toFloats(256), java.util.Arrays.copyOf(ref, 256), "e5m2 decode");
      E8m0.decode(all, 0, ref, 0, 256);
      FormatsGpu.e8m0Decode(src, dst, 256, stream);
      Tolerance.assertBitEqual(dst.toFloats(256), java.util.Arrays.copyOf(ref, 256), "e8m0 decode");
      Fp4E2m1.decode(all, 0, ref, 0, 512);
      FormatsGpu.e2m1Decode(src, dst, 512, stream);
      Tolerance.assertBitEqual(dst.toFloats(512), ref, "e2m1 decode (all byte pairs)");
    }
  }

  @Test
  void gridStrideCoversMoreThanOneGrid() {
    int n = 65536 * 256 + 1237;  // past the kernels' grid cap
    float[] x = new float[n];
    Random r = new Random(5);
    for (int i = 0; i < n; i++) {
      x[i] = Float.intBitsToFloat(r.nextInt());
    }
    byte[] cpu = new byte[n];
    Fp8E4m3.encodeSaturating(x, 0, cpu, 0, n);
    assertArrayEquals(cpu, gpuEncodeBytes(FormatsGpu::e4m3EncodeSaturating, x, n));
  }

  private static float[] matrix(int rows, int cols, long seed) {
    Random r = new Random(seed);
    float[] x = new float[rows * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(24) - 12));
    }
    if (x.length >= 64) {
      for (int j = 0; j < 32; j++) {
        x[32 + j] = 0f;  // a zero block
      }
      x[3] = -0f;
    }
    return x;
  }

  @Test
  void nvfp4MatchesCpu() {
    for (int[] sh : new int[][] {{1, 16}, {37, 96}, {129, 2880}, {0, 32}}) {
      int rows = sh[0];
      int cols = sh[1];
      float[] w = matrix(rows, cols, rows + cols);
      int n = rows * cols;
      byte[] packed = new byte[n / 2];
      byte[] scales = new byte[n / 16];
      float g = Nvfp4.quantize(w, rows, cols, packed, scales);
      float[] back = new float[n];
      Nvfp4.dequantize(packed, scales, g, rows, cols, back);
      try (DeviceBuffer x = alloc.upload(w, "w"); DeviceBuffer p = alloc.allocate(n / 2, "packed");
          DeviceBuffer s = alloc.allocate(n / 16, "scales"); DeviceBuffer out = alloc.allocate(4L * n, "out")) {
        FormatsGpu.nvfp4Quantize(x, rows, cols, g, p, s, stream);
        assertArrayEquals(packed, p.toBytes(n / 2), rows + "x" + cols + " packed");
        assertArrayEquals(scales, s.toBytes(n / 16), rows + "x" + cols + " scales");
        FormatsGpu.nvfp4Dequantize(p, s, g, rows, cols, out, stream);
        Tolerance.assertBitEqual(out.toFloats(n), back, rows + "x" + cols + " dequantize");
      }
    }
  }

  @Test
  void mxMatchesCpu() {
    for (Mxfp.Kind k : Mxfp.Kind.values()) {
      for (int[] sh : new int[][] {{1, 32}, {9, 160}, {64, 2880}}) {
        int rows = sh[0];
        int cols = sh[1];
        float[] x = matrix(rows, cols, 7 * rows + cols);
        if (rows > 1) {
          x[cols + 5] = Float.NaN;  // a NaN block
          x[2 * cols + 40] = Float.NEGATIVE_INFINITY;
        }
        int n = rows * cols;
        int eb = (int) k.elementBytes(n);
        byte[] e = new byte[eb];
        byte[] s = new byte[n / 32];
        Mxfp.quantize(k, x, rows, cols, e, s);
        float[] back = new float[n];
        Mxfp.dequantize(k, e, s, rows, cols, back);
        String what = k + " " + rows + "x" + cols;
        try (DeviceBuffer xd = alloc.upload(x, "x"); DeviceBuffer ed = alloc.allocate(eb, "elements");
            DeviceBuffer sd = alloc.allocate(n / 32, "scales"); DeviceBuffer out = alloc.allocate(4L * n, "out")) {
          FormatsGpu.mxQuantize(k, xd, rows, cols, ed, sd, stream);
          assertArrayEquals(e, ed.toBytes(eb), what + " elements");
          assertArrayEquals(s, sd.toBytes(n / 32), what + " scales");
          FormatsGpu.mxDequantize(k, ed, sd, rows, cols, out, stream);
          Tolerance.assertBitEqual(out.toFloats(n), back, what + " dequantize");
        }
      }
    }
  }

  @Test
  void blockFp8MatchesCpu() {
    int[][] shapes = {{130, 200, 128, 128}, {5, 257, 1, 128}, {1, 1, 128, 128}, {300, 7168, 1, 128},
        {256, 384, 128, 128}, {3, 5, 2, 3}, {0, 7, 1, 128}};
    for (int[] sh : shapes) {
      int rows = sh[0];
      int cols = sh[1];
      float[] x = matrix(rows, cols, rows * 31L + cols);
      if (rows > 2) {
        x[cols + 1] = Float.POSITIVE_INFINITY;
        x[2 * cols] = Float.NaN;
        x[2 * cols + 1] = 1e-39f;
      }
      for (int variant = 0; variant < 4; variant++) {
        boolean pow2 = (variant & 1) != 0;
        BlockFp8.ScaleRule rule = BlockFp8.ScaleRule.values()[variant >> 1];
        int ns = BlockFp8.scaleRows(rows, sh[2]) * BlockFp8.scaleCols(cols, sh[3]);
        int n = rows * cols;
        byte[] q = new byte[n];
        float[] sinv = new float[ns];
        BlockFp8.quantize(rule, x, rows, cols, sh[2], sh[3], pow2, q, sinv);
        float[] back = new float[n];
        BlockFp8.dequantize(q, sinv, rows, cols, sh[2], sh[3], back);
        String what = rule + " " + rows + "x" + cols + " tiles " + sh[2] + "x" + sh[3] + " pow2=" + pow2;
        try (DeviceBuffer xd = alloc.upload(x, "x"); DeviceBuffer qd = alloc.allocate(n, "q");
            DeviceBuffer sd = alloc.allocate(4L * ns, "scaleInv"); DeviceBuffer out = alloc.allocate(4L * n, "out")) {
          FormatsGpu.blockFp8Quantize(rule, xd, rows, cols, sh[2], sh[3], pow2, qd, sd, stream);
          assertArrayEquals(q, qd.toBytes(n), what + " codes");
          Tolerance.assertBitEqual(sd.toFloats(ns), sinv, what + " scales");
          FormatsGpu.blockFp8Dequantize(qd, sd, rows, cols, sh[2], sh[3], out, stream);
          Tolerance.assertBitEqual(out.toFloats(n), back, what + " dequantize");
        }
      }
    }
  }

  @Test
  void argumentsAreCheckedBeforeLaunch() {
    try (DeviceBuffer small = alloc.allocate(16, "small"); DeviceBuffer big = alloc.allocate(4096, "big")) {
      assertThrows(IllegalArgumentException.class, () -> FormatsGpu.bf16Encode(small, big, 5, stream));
      assertThrows(IllegalArgumentException.class, () -> FormatsGpu.e4m3Decode(big, small, 5, stream));
      assertThrows(IllegalArgumentException.class,
          () -> FormatsGpu.nvfp4Quantize(big, 1, 24, 1f, big, big, stream));
      assertThrows(IllegalArgumentException.class,
          () -> FormatsGpu.blockFp8Quantize(big, 4, 4, 0, 128, false, big, big, stream));
    }
  }

  @Test
  void specialBitPatternsSurviveTheRoundTrip() {
    float[] x = bits(new int[] {0x7F800001, 0xFF800001, 0x7FC00000, 0xFFFFFFFF, 0x00000001, 0x80000001,
        0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x80000000, 0x00000000});
    short[] cpu = new short[x.length];
    Bf16.encode(x, 0, cpu, 0, x.length);
    try (DeviceBuffer src = alloc.upload(x, "x"); DeviceBuffer dst = alloc.allocate(2L * x.length, "codes")) {
      FormatsGpu.bf16Encode(src, dst, x.length, stream);
      assertArrayEquals(cpu, dst.toShorts(x.length));
      Fp16.encode(x, 0, cpu, 0, x.length);
      FormatsGpu.fp16Encode(src, dst, x.length, stream);
      assertArrayEquals(cpu, dst.toShorts(x.length));
    }
  }
}
