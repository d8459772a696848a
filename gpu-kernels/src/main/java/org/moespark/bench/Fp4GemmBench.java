package org.moespark.bench;

import java.io.PrintStream;
import java.time.LocalDate;
import java.util.List;
import java.util.SplittableRandom;
import org.moespark.bench.LayerBenchGpu.Shape;
import org.moespark.cuda.Cuda;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.formats.Bf16;
import org.moespark.layer.Compute;
import org.moespark.layer.GatedActivation;
import org.moespark.layer.GroupedGemm;
import org.moespark.layer.GroupedGemmFp4;
import org.moespark.layer.MoeLayerGpu;
import org.moespark.layer.RouterSpec;
import org.moespark.model.WeightTensor;

/**
 * The routed SwiGLU expert FFN with FP4 weights ({@link GroupedGemmFp4}: MXFP4 and NVFP4, dequantized inside
 * the GEMM) next to our bf16 FFN ({@link MoeLayerGpu#expertFfn}, GEMM variants 4 and 3) on the same rows, in one
 * process: ms, TFLOP/s ({@code 6·T·k·H·I / time}) and the ratio to bf16, at a compute-bound token count and a
 * small (weight-bandwidth-bound) one, for the model shapes of {@link LayerBenchGpu} plus GPT-OSS-120B (the
 * MXFP4 model). Weights are random codes (bf16 random bits reused as code bytes) with constant scales: the
 * timing does not depend on the values; correctness is the GPU tests' ({@code GroupedGemmFp4GpuTest}).
 *
 * <pre>  java -cp ... org.moespark.bench.Fp4GemmBench [TOKENS...]      (default 16384 256)</pre>
 */
public final class Fp4GemmBench {
  private Fp4GemmBench() {}

  /** {@link LayerBenchGpu}'s shapes and GPT-OSS-120B's (the MXFP4 model). */
  static final List<Shape> SHAPES = java.util.stream.Stream.concat(LayerBenchGpu.SHAPES.stream(),
      java.util.stream.Stream.of(new Shape("gpt-oss-120b", 2880, 2880, 128, 4))).toList();

  public static void main(String[] args) {
    int[] tokens = args.length == 0 ? new int[] {16384, 256}
        : java.util.Arrays.stream(args).mapToInt(Integer::parseInt).toArray();
    System.exit(run(tokens, System.out));
  }

  static int run(int[] tokens, PrintStream out) {
    if (!NativeLibrary.isAvailable()) {
      out.println("bench fp4: GPU backend " + NativeLibrary.describe());
      return 1;
    }
    out.printf("bench fp4: %s, %s, java %s, %s%n", Cuda.deviceInfo(Cuda.currentDevice()), Cuda.versions(),
        System.getProperty("java.version"), LocalDate.now());
    out.println("FFN = SwiGLU gate/up grouped GEMM + down grouped GEMM, bf16 rows; TFLOP/s = 6*T*k*H*I / time; "
        + "x/bf16 = our bf16 FFN's time (best of GEMM variants 4, 3) over this one's; fp4 ms = best of its variants");
    out.printf("%-14s %6s | %9s %9s %8s | %9s %8s %7s | %9s %8s %7s | %s%n", "shape", "T", "bf16 v4", "bf16 v3",
        "TFLOP/s", "mxfp4 ms", "TFLOP/s", "x/bf16", "nvfp4 ms", "TFLOP/s", "x/bf16", "weights GiB bf16 / fp4");
    int rc = 0;
    for (Shape s : SHAPES) {
      String only = System.getProperty("moespark.bench.shapes", "");
      if (!only.isBlank() && !List.of(only.split(",")).contains(s.name())) {
        continue;
      }
      try {
        runShape(s, tokens, out);
      } catch (RuntimeException e) {
        out.printf("%-14s FAILED: %s%n", s.name(), e);
        rc = 1;
      }
    }
    return rc;
  }

  private static void runShape(Shape s, int[] tokenCounts, PrintStream out) {
    int h = s.hidden();
    RouterSpec rs = LayerBenchGpu.randomRouter(s, new SplittableRandom(7));
    int variant = GroupedGemm.variant();
    try (MoeLayerGpu g = MoeLayerGpu.random(rs, s.inter(), GatedActivation.SWIGLU, false, Compute.BF16, 11);
        CudaStream stream = CudaStream.create(); DeviceAllocator alloc = new DeviceAllocator("Fp4GemmBench", stream)) {
      int ip = g.paddedIntermediate();
      if (ip % 32 != 0) {
        throw new IllegalArgumentException("intermediate " + ip + " is not a multiple of 32");
      }
      long e = s.experts();
      double bf16Gib = g.weightBytes() / (double) (1L << 30);
      int maxT = java.util.Arrays.stream(tokenCounts).max().orElse(0);
      long maxRows = (long) maxT * s.topK();
      try (DeviceBuffer xp = g.allocate(2 * maxRows * h, "rows"); DeviceBuffer o = g.allocate(2 * maxRows * h, "out");
          DeviceBuffer act = alloc.allocate(2 * maxRows * ip, "act")) {
        g.fillRandomBf16(xp, maxRows * h, 5, 1f);
        double[][][] fp4Ms = new double[2][tokenCounts.length][2];
        double fp4Gib = 0;
        for (int f = 0; f < 2; f++) {
          // one format's weights at a time, so that DeepSeek-V3's fit next to its bf16 weights
          WeightTensor.Format fmt = f == 0 ? WeightTensor.Format.MXFP4 : WeightTensor.Format.NVFP4;
          int blk = GroupedGemmFp4.block(fmt);
          try (DeviceBuffer c1 = alloc.allocate(e * 2 * ip * h / 2, "gate/up codes");
              DeviceBuffer s1 = alloc.allocate(e * 2 * ip * (h / blk), "gate/up scales");
              DeviceBuffer c2 = alloc.allocate(e * h * ip / 2, "down codes");
              DeviceBuffer s2 = alloc.allocate(e * h * (ip / blk), "down scales");
              DeviceBuffer cs1 = fmt == WeightTensor.Format.NVFP4 ? alloc.upload(colScale(2 * ip * (int) e), "gate/up col") : null;
              DeviceBuffer cs2 = fmt == WeightTensor.Format.NVFP4 ? alloc.upload(colScale(h * (int) e), "down col") : null) {
            g.fillRandomBf16(c1, c1.size() / 2, 21, 1f);
            g.fillRandomBf16(c2, c2.size() / 2, 22, 1f);
            // MXFP4: 2^-5 (E8M0 122); NVFP4: 0.5 (E4M3 0x30) with weight_scale_2 = 2^-4
            s1.fill(fmt == WeightTensor.Format.MXFP4 ? 122 : 0x30, stream);
            s2.fill(fmt == WeightTensor.Format.MXFP4 ? 122 : 0x30, stream);
            fp4Gib = (c1.size() + s1.size() + c2.size() + s2.size()) / (double) (1L << 30);
            g.stream().synchronize();
            for (int t = 0; t < tokenCounts.length; t++) {
              int[] offsets = LayerBenchGpu.balancedOffsets(s, (long) tokenCounts[t] * s.topK());
              Runnable ffn = () -> {
                GroupedGemmFp4.gemm(alloc, xp, h, offsets, fmt, c1, h / 2, s1, h / blk, cs1, 2 * ip, h, null,
                    GroupedGemm.Epilogue.SWIGLU, true, GatedActivation.SWIGLU, act, ip);
                GroupedGemmFp4.gemm(alloc, act, ip, offsets, fmt, c2, ip / 2, s2, ip / blk, cs2, h, ip, null,
                    GroupedGemm.Epilogue.STORE_BF16, true, null, o, h);
              };
              int before = GroupedGemmFp4.variant();
              try {
                for (int v = 1; v <= 2; v++) {
                  GroupedGemmFp4.setVariant(v);
                  fp4Ms[f][t][v - 1] = time(stream, ffn, iters(tokenCounts[t]));
                  checkFinite(o, offsets[offsets.length - 1], h, s.name() + " " + fmt + " variant " + v);
                }
              } finally {
                GroupedGemmFp4.setVariant(before);
              }
            }
          }
        }
        for (int t = 0; t < tokenCounts.length; t++) {
          int tok = tokenCounts[t];
          int[] offsets = LayerBenchGpu.balancedOffsets(s, (long) tok * s.topK());
          double[] bf = new double[2];
          for (int v = 0; v < 2; v++) {
            GroupedGemm.setVariant(v == 0 ? 4 : 3);
            bf[v] = time(g.stream(), () -> g.expertFfn(xp, offsets, o), iters(tok));
          }
          GroupedGemm.setVariant(variant);
          double best = Math.min(bf[0], bf[1]);
          double flops = 6.0 * tok * s.topK() * h * s.inter();
          double mx = Math.min(fp4Ms[0][t][0], fp4Ms[0][t][1]);
          double nv = Math.min(fp4Ms[1][t][0], fp4Ms[1][t][1]);
          out.printf("%-14s %6d | %9.3f %9.3f %8.1f | %9.3f %8.1f %6.2fx | %9.3f %8.1f %6.2fx | %.2f / %.2f"
              + "   (fp4 variants 1 / 2: mxfp4 %.3f / %.3f ms, nvfp4 %.3f / %.3f ms)%n",
              s.name(), tok, bf[0], bf[1], tflops(flops, best), mx, tflops(flops, mx), best / mx, nv,
              tflops(flops, nv), best / nv, bf16Gib, fp4Gib, fp4Ms[0][t][0], fp4Ms[0][t][1], fp4Ms[1][t][0],
              fp4Ms[1][t][1]);
        }
      }
    } finally {
      GroupedGemm.setVariant(variant);
    }
  }

  private static int iters(int tokens) {
    return tokens >= 4096 ? 10 : 50;
  }

  private static double tflops(double flops, double ms) {
    return flops / (ms * 1e-3) / 1e12;
  }

  private static float[] colScale(int n) {
    float[] c = new float[n];
    java.util.Arrays.fill(c, 0.0625f);
    return c;
  }

  /** Mean ms of {@code iters} runs after a warm-up (CUDA events on {@code stream}). */
  private static double time(CudaStream stream, Runnable work, int iters) {
    work.run();
    return stream.time(() -> {
      for (int i = 0; i < iters; i++) {
        work.run();
      }
    }) / iters;
  }

  private static void checkFinite(DeviceBuffer o, long rows, int h, String what) {
    for (long r : new long[] {0, rows / 2, rows - 1}) {
      short[] v = o.view(2 * r * h, 2L * h).toShorts(h);
      for (short b : v) {
        if (!Float.isFinite(Bf16.decode(b))) {
          throw new IllegalStateException(what + ": non-finite output in row " + r);
        }
      }
    }
  }
}
