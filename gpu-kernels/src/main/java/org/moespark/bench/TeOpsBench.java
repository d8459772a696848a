package org.moespark.bench;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.ops.TeDtype;
import org.moespark.ops.TeMaskPermute;
import org.moespark.ops.TeMaskPermuteGpu;
import org.moespark.ops.TePermute;
import org.moespark.ops.TePermuteGpu;

/**
 * GPU benchmark of the TransformerEngine-twin permutation ops ({@link TePermuteGpu} index map,
 * {@link TeMaskPermuteGpu} mask map) at real model shapes, bf16 tokens: achieved GB/s in "unique
 * bytes" (performance-anchors.md: permute = (T + T·k)·H·bytes, unpermute = (T·k + T)·H·bytes) next to
 * a device-to-device copy of the same byte count measured in the same process, as {@link OpsBench}
 * does. Each op is timed as a caller sees it (wall clock over back-to-back calls, stream synchronized
 * at the end): the permutes include building the row_id_map and their one readback, the unpermutes
 * their one readback of the map check. Before timing, every op is checked bit for bit against the
 * CPU reference on a prefix of the tokens.
 *
 * <p>Usage: {@code TeOpsBench [--tokens 16384] [--iters 20]}
 */
public final class TeOpsBench {
  record Shape(String name, int hidden, int experts, int topK) {}

  static final List<Shape> SHAPES = List.of(new Shape("mixtral", 4096, 8, 2), new Shape("qwen3-30b-a3b", 2048, 128, 8),
      new Shape("olmoe", 2048, 64, 8), new Shape("deepseek-v3", 7168, 256, 8));

  private TeOpsBench() {}

  public static void main(String[] args) {
    int tokens = 16384;
    int iters = 20;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--tokens" -> tokens = Integer.parseInt(args[++i]);
        case "--iters" -> iters = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    System.exit(run(tokens, iters, System.out));
  }

  public static int run(int tokens, int iters, PrintStream out) {
    if (!NativeLibrary.isAvailable()) {
      out.println("bench te-ops: GPU backend " + NativeLibrary.describe());
      return 1;
    }
    out.println("# moespark TE ops benchmark — " + NativeLibrary.describe());
    out.printf("# tokens %d, bf16, %d timed iterations after warm-up; GB/s = unique bytes / time%n", tokens, iters);
    out.printf("%-14s %-14s %9s %9s %9s %8s%n", "shape", "op", "time_us", "GB/s", "copy_GB/s", "vs_copy");
    try (CudaStream s = CudaStream.create(); DeviceAllocator alloc = new DeviceAllocator("TeOpsBench", s)) {
      for (Shape shape : SHAPES) {
        benchShape(shape, tokens, iters, alloc, s, out);
      }
    }
    return 0;
  }

  private static void benchShape(Shape sh, int tokens, int iters, DeviceAllocator alloc, CudaStream s,
      PrintStream out) {
    SplittableRandom rnd = new SplittableRandom(42);
    int k = sh.topK();
    int e = sh.experts();
    int h = sh.hidden();
    int[] indices = new int[tokens * k];
    float[] probs = new float[tokens * k];
    byte[] routing = new byte[tokens * e];
    float[] dense = new float[tokens * e];
    for (int t = 0; t < tokens; t++) {
      int[] ids = rnd.ints(0, e).distinct().limit(k).toArray();
      for (int j = 0; j < k; j++) {
        indices[t * k + j] = ids[j];
        probs[t * k + j] = 1f / k;
        routing[t * e + ids[j]] = 1;
        dense[t * e + ids[j]] = 1f / k;
      }
    }
    int rows = tokens * k;
    long rowBytes = 2L * h;
    long bytes = (long) (tokens + (long) rows) * rowBytes;
    try (DeviceBuffer dIdx = alloc.upload(indices, "indices"); DeviceBuffer dProbs = alloc.upload(probs, "probs");
        DeviceBuffer dRouting = alloc.upload(routing, "routing_map"); DeviceBuffer dDense = alloc.upload(dense, "dense");
        DeviceBuffer x = alloc.allocate(rowBytes * tokens, "x"); DeviceBuffer y = alloc.allocate(rowBytes * rows, "y");
        DeviceBuffer copySrc = alloc.allocate(bytes / 2, "copy src");
        DeviceBuffer copyDst = alloc.allocate(bytes / 2, "copy dst")) {
      BenchSupport.fillRandomBf16(x, rnd);
      BenchSupport.fillRandomBf16(y, rnd);
      validate(alloc, indices, routing, probs, dense, x, y, tokens, k, e, h);
      float copyMs = BenchSupport.time(s, iters, () -> copyDst.copyFromDevice(copySrc, 0, 0, copySrc.size(), s));
      double copyGbs = bytes / (copyMs * 1e6);
      try (TePermuteGpu.Result idx = TePermuteGpu.moePermute(alloc, TeDtype.BF16, x, tokens, h, dIdx, k, 0);
          TeMaskPermuteGpu.Permuted mask = TeMaskPermuteGpu.moePermuteWithProbs(alloc, TeDtype.BF16, x, tokens, h,
              dDense, dRouting, e, rows)) {
        report(out, sh, "idx_map", BenchSupport.time(s, iters, () -> TePermuteGpu.makeRowIdMap(alloc, dIdx, tokens, k, 0).close()),
            0, copyGbs);
        report(out, sh, "idx_permute", BenchSupport.time(s, iters,
            () -> TePermuteGpu.moePermute(alloc, TeDtype.BF16, x, tokens, h, dIdx, k, 0).close()), bytes, copyGbs);
        report(out, sh, "idx_unpermute", BenchSupport.time(s, iters, () -> TePermuteGpu.moeUnpermute(alloc, TeDtype.BF16, y, rows, h,
            idx.rowIdMap(), dProbs, tokens, k).close()), bytes, copyGbs);
        report(out, sh, "mask_map",
            BenchSupport.time(s, iters, () -> TeMaskPermuteGpu.makeRowIdMap(alloc, dRouting, tokens, e).close()), 0, copyGbs);
        report(out, sh, "mask_permute", BenchSupport.time(s, iters, () -> TeMaskPermuteGpu.moePermuteWithProbs(alloc, TeDtype.BF16,
            x, tokens, h, dDense, dRouting, e, rows).close()), bytes, copyGbs);
        report(out, sh, "mask_unpermute", BenchSupport.time(s, iters, () -> TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.BF16, y,
            rows, h, mask.rowIdMap(), e, dDense, tokens, null).close()), bytes, copyGbs);
      }
    }
  }

  /** Every timed op against the CPU reference on a prefix of tokens, bit for bit. */
  private static void validate(DeviceAllocator alloc, int[] indices, byte[] routing, float[] probs, float[] dense,
      DeviceBuffer x, DeviceBuffer y, int tokens, int k, int e, int h) {
    int sub = Math.min(tokens, 512);
    int rows = sub * k;
    short[] xs = new short[sub * h];
    short[] ys = new short[rows * h];
    x.view(0, 2L * xs.length).copyTo(xs);
    y.view(0, 2L * ys.length).copyTo(ys);
    int[] idx = Arrays.copyOf(indices, sub * k);
    float[] p = Arrays.copyOf(probs, sub * k);
    byte[] rm = Arrays.copyOf(routing, sub * e);
    float[] dp = Arrays.copyOf(dense, sub * e);
    TePermute.Result<short[]> ci = TePermute.moePermute(xs, sub, h, idx, k, 0);
    short[] cu = TePermute.moeUnpermute(ys, rows, h, ci.rowIdMap(), p, sub, k);
    TeMaskPermute.PermutedWithProbs<short[]> cm = TeMaskPermute.moePermuteWithProbs(xs, sub, h, dp, rm, e, rows);
    short[] cmu = TeMaskPermute.moeUnpermute(ys, rows, h, cm.rowIdMap(), e, dp, sub, null);
    try (DeviceBuffer dIdx = alloc.upload(idx, "v indices"); DeviceBuffer dp1 = alloc.upload(p, "v probs");
        DeviceBuffer drm = alloc.upload(rm, "v routing"); DeviceBuffer ddp = alloc.upload(dp, "v dense");
        TePermuteGpu.Result gi = TePermuteGpu.moePermute(alloc, TeDtype.BF16, x, sub, h, dIdx, k, 0);
        DeviceBuffer gu = TePermuteGpu.moeUnpermute(alloc, TeDtype.BF16, y, rows, h, gi.rowIdMap(), dp1, sub, k);
        TeMaskPermuteGpu.Permuted gm = TeMaskPermuteGpu.moePermuteWithProbs(alloc, TeDtype.BF16, x, sub, h, ddp, drm, e,
            rows);
        DeviceBuffer gmu = TeMaskPermuteGpu.moeUnpermute(alloc, TeDtype.BF16, y, rows, h, gm.rowIdMap(), e, ddp, sub,
            null)) {
      boolean ok = Arrays.equals(ci.rowIdMap(), gi.rowIdMap().toInts(rows))
          && Arrays.equals(ci.permuted(), gi.permuted().toShorts(rows * h))
          && Arrays.equals(cu, gu.toShorts(sub * h))
          && Arrays.equals(cm.rowIdMap(), gm.rowIdMap().toInts(sub * (2 * e + 1)))
          && Arrays.equals(cm.output(), gm.output().toShorts(rows * h))
          && Arrays.equals(cmu, gmu.toShorts(sub * h));
      if (!ok) {
        throw new IllegalStateException("validation failed: a TE GPU op differs from the CPU reference");
      }
    }
  }

  private static void report(PrintStream out, Shape sh, String op, float ms, long bytes, double copyGbs) {
    double us = ms * 1000.0;
    double gbs = bytes == 0 ? Double.NaN : bytes / (ms * 1e6);
    out.printf("%-14s %-14s %9.1f %9s %9.0f %8s%n", sh.name(), op, us, bytes == 0 ? "-" : String.format("%.0f", gbs),
        copyGbs, bytes == 0 ? "-" : String.format("%.2fx", gbs / copyGbs));
  }
}
