package org.moespark.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.moespark.cuda.Cuda;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.cuda.StreamTimeline;
import org.moespark.formats.Bf16;
import org.moespark.formats.FormatsGpu;
import org.moespark.layer.Compute;
import org.moespark.layer.GatedActivation;
import org.moespark.layer.GemmPrecision;
import org.moespark.layer.GroupedGemm;
import org.moespark.layer.GroupedGemmFp8;
import org.moespark.layer.MoeLayer;
import org.moespark.layer.MoeLayerGpu;
import org.moespark.layer.RouterSpec;

/**
 * GPU part of {@link LayerBench} ({@code bin/moe bench layer --backend gpu}), at real model shapes with
 * random bf16 weights generated on the device:
 *
 * <ul>
 *   <li>the bf16 SwiGLU expert FFN alone (grouped gate/up GEMM with the fused activation, grouped down
 *       GEMM) on balanced expert-major rows: TFLOP/s counting {@code 6·T·k·H·I}, next to
 *       {@code torch._grouped_mm} doing the same FFN ({@code tools/bench/torch_layer_baseline.py}, same
 *       device call);
 *   <li>the same FFN with FP8 GEMMs ({@link GemmPrecision#FP8}: the same bf16 weights quantized to e4m3
 *       with 128×128 block scales, rows and activations quantized 1×128 on the device inside the timed
 *       call): TFLOP/s and the ratio to our bf16 FFN of the same run; validated against the bf16 FFN's
 *       output (relative error printed, must be below 0.1);
 *   <li>the whole layer through {@link MoeLayerGpu#forwardDevice} (fp32 x and y on the device, routing on
 *       the device, only the routing copied to the host): tokens/s next to the torch {@code _grouped_mm}
 *       pipeline and HF's eager expert loop (device-resident as well);
 *   <li>the whole layer through {@link MoeLayerGpu#forward(float[], int)} (Java arrays, CPU routing,
 *       pageable copies): tokens/s, what array callers get today.
 * </ul>
 *
 * Validates before timing: two rows of the FFN (the first row of expert 0 and the last of the last
 * expert) against a naive double-precision loop over the downloaded bf16 weights.
 */
final class LayerBenchGpu {
  private LayerBenchGpu() {}

  /** A real model's MoE shape (routed experts only). */
  record Shape(String name, int hidden, int inter, int experts, int topK) {}

  static final List<Shape> SHAPES = List.of(new Shape("mixtral", 4096, 14336, 8, 2),
      new Shape("qwen3-30b-a3b", 2048, 768, 128, 8), new Shape("olmoe", 2048, 1024, 64, 8),
      new Shape("deepseek-v3", 7168, 2048, 256, 8));

  /**
   * GEMM variants to time: system property {@code moespark.bench.variants}, e.g. {@code 1,2} (default 1,3,4).
   * Variant 5 is a timing probe (variant 4's main loop with no epilogue: it writes nothing), timed but never
   * validated nor used for the layer: the gap between 4 and 5 is what the epilogue costs.
   */
  static final int[] VARIANTS = java.util.Arrays.stream(System.getProperty("moespark.bench.variants", "1,3,4")
      .split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();

  static int run(int tokens, Path torchBaseline, PrintStream out) throws IOException {
    if (!NativeLibrary.isAvailable()) {
      out.println("bench layer --backend gpu: GPU backend " + NativeLibrary.describe());
      return 1;
    }
    Map<String, Double> torch = torchBaseline == null ? Map.of() : BenchSupport.readBaseline(torchBaseline);
    out.printf("bench layer: backend gpu, %s, %s, java %s, %s, tokens %d%n", Cuda.deviceInfo(Cuda.currentDevice()),
        Cuda.versions(), System.getProperty("java.version"), LocalDate.now(), tokens);
    out.println("ffn: bf16 SwiGLU expert FFN, TFLOP/s = 6·T·k·H·I / time; torch = torch._grouped_mm FFN; layer: "
        + "forwardDevice (device routing, device-resident x/y) vs the torch _grouped_mm pipeline and HF's eager loop; "
        + "array: forward(float[]) (CPU routing, pageable copies)");
    out.println("fp8: the FFN with GemmPrecision.FP8 (e4m3 GEMMs, 1x128 activation / 128x128 weight scales, "
        + "activation quantization included); fp8/bf16 = its TFLOP/s over our bf16 FFN's");
    out.printf("%-14s %5s %5s %4s %2s | %9s %8s %8s %6s | %9s %8s %8s | %10s %10s %7s %10s %7s | %10s%n", "shape",
        "H", "I", "E", "k", "ffn ms", "TFLOP/s", "torch", "ratio", "fp8 ms", "TFLOP/s", "fp8/bf16", "layer tok/s",
        "pipe tok/s", "ratio", "eager tok/s", "ratio", "array tok/s");
    int rc = 0;
    int variant = GroupedGemm.variant();
    try {
      String only = System.getProperty("moespark.bench.shapes", "");
      for (Shape s : SHAPES) {
        if (!only.isBlank() && !List.of(only.split(",")).contains(s.name())) {
          continue;
        }
        rc |= runShape(s, tokens, torch, out);
        GroupedGemm.setVariant(variant);
      }
    } finally {
      GroupedGemm.setVariant(variant);
    }
    return rc;
  }

  /**
   * The benchmark router of {@code s}: softmax top-k with renormalisation, uniform random weights scaled by
   * {@code 1/sqrt(H)} from seed 7 (balanced in expectation); {@code rnd} is left after the router's draws.
   */
  static RouterSpec randomRouter(Shape s, SplittableRandom rnd) {
    int h = s.hidden();
    float[] router = new float[s.experts() * h];
    for (int i = 0; i < router.length; i++) {
      router[i] = (float) ((rnd.nextDouble() * 2 - 1) / Math.sqrt(h));
    }
    return RouterSpec.softmaxTopK(h, s.experts(), s.topK(), router, true, false);
  }

  /** Expert segment offsets {@code [E+1]} of {@code rows} expert-major rows split evenly over the experts. */
  static int[] balancedOffsets(Shape s, long rows) {
    int[] offsets = new int[s.experts() + 1];
    for (int e = 0; e <= s.experts(); e++) {
      offsets[e] = (int) (rows * e / s.experts());
    }
    return offsets;
  }

  /** Seconds per {@code forwardDevice} call (mean of 20 after a warm-up): device routing, device-resident x and y. */
  private static double layerSeconds(MoeLayerGpu g, Shape s, int tokens, PrintStream out) {
    long n = (long) tokens * s.hidden();
    double devSec;
    try (DeviceBuffer xb = g.allocate(2 * n, "x bf16"); DeviceBuffer xd = g.allocate(4 * n, "x");
        DeviceBuffer yd = g.allocate(4 * n, "y")) {
      g.fillRandomBf16(xb, n, 9, 1f);
      FormatsGpu.bf16Decode(xb, xd, n, g.stream());
      g.stream().synchronize();
      MoeLayer.Output warm = g.forwardDevice(xd, tokens, yd);
      if (warm.topkIds().length != tokens * s.topK()) {
        throw new IllegalStateException("routing has " + warm.topkIds().length + " ids, expected " + tokens * s.topK());
      }
      int runs = 20;
      long t0 = System.nanoTime();
      for (int i = 0; i < runs; i++) {
        g.forwardDevice(xd, tokens, yd);
      }
      devSec = (System.nanoTime() - t0) / 1e9 / runs;
      if (TRACE) {
        trace(g, xd, tokens, yd, s.name(), out);
      }
    }
    return devSec;
  }

  private static int runShape(Shape s, int tokens, Map<String, Double> torch, PrintStream out) {
    SplittableRandom rnd = new SplittableRandom(7);
    int h = s.hidden();
    RouterSpec rs = randomRouter(s, rnd);
    try (MoeLayerGpu g = MoeLayerGpu.random(rs, s.inter(), GatedActivation.SWIGLU, false, Compute.BF16, 11)) {
      int ip = g.paddedIntermediate();
      long rows = (long) tokens * s.topK();
      int[] offsets = balancedOffsets(s, rows);
      double ffnMs;
      double fp8Ms;
      double devSec;
      try (DeviceBuffer xp = g.allocate(2 * rows * h, "bench rows"); DeviceBuffer o = g.allocate(2 * rows * h, "out")) {
        g.fillRandomBf16(xp, rows * h, 5, 1f);
        g.expertFfn(xp, offsets, o);
        int validated = GroupedGemm.variant();
        double err = validate(g, xp, o, offsets, h, ip);
        if (!(err <= 2e-2)) {
          out.printf("%-14s validation FAILED: FFN rows relative error %.3e vs the naive reference%n", s.name(), err);
          return 1;
        }
        int iters = 10;
        double best = Double.POSITIVE_INFINITY;
        int bestVariant = 0;
        int before = GroupedGemm.variant();
        StringBuilder perVariant = new StringBuilder();
        try {
          for (int v : VARIANTS) {
            GroupedGemm.setVariant(v);
            g.expertFfn(xp, offsets, o); // warm-up
            if (v == 5) {
              double probe = g.stream().time(() -> {
                for (int i = 0; i < iters; i++) {
                  g.expertFfn(xp, offsets, o);
                }
              }) / iters;
              perVariant.append(String.format(" [v5 main loop only %.3f ms]", probe));
              continue;
            }
            double e = v == validated ? err : validate(g, xp, o, offsets, h, ip);
            if (!(e <= 2e-2)) {
              out.printf("%-14s validation FAILED for GEMM variant %d: relative error %.3e%n", s.name(), v, e);
              continue;
            }
            double ms = g.stream().time(() -> {
              for (int i = 0; i < iters; i++) {
                g.expertFfn(xp, offsets, o);
              }
            }) / iters;
            perVariant.append(String.format(" v%d %.3f ms (check %.1e)", v, ms, e));
            if (ms < best) {
              best = ms;
              bestVariant = v;
            }
          }
        } finally {
          GroupedGemm.setVariant(bestVariant > 0 ? bestVariant : before); // the whole layer runs the best one
        }
        ffnMs = best;
        out.printf("%-14s ffn per GEMM variant:%s (best: v%d, used for the whole layer)%n", s.name(), perVariant,
            bestVariant);
        // the whole layer right after the bf16 FFN (the torch baseline times its pipeline right after its FFN too),
        // before the FP8 FFN's runs warm the GPU further
        devSec = layerSeconds(g, s, tokens, out);
        fp8Ms = FP8 ? fp8Ffn(s, rs, xp, o, offsets, rows, h, iters, tokens, devSec, out) : Double.NaN;
      }
      double flops = 6.0 * rows * h * s.inter();
      double tflops = flops / (ffnMs * 1e-3) / 1e12;
      double torchFfnUs = torch.getOrDefault(s.name() + ".ffn_us", Double.NaN);
      double torchTflops = flops / (torchFfnUs * 1e-6) / 1e12;

      // whole layer through Java arrays (CPU routing, pageable copies): what forward(float[]) callers get today
      float[] x = new float[tokens * h];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) (rnd.nextDouble() * 2 - 1);
      }
      g.forward(x, tokens);
      int runs = 2;
      long t0 = System.nanoTime();
      for (int i = 0; i < runs; i++) {
        g.forward(x, tokens);
      }
      double arraySec = (System.nanoTime() - t0) / 1e9 / runs;
      double tokS = tokens / devSec;
      double pipeTokS = tokens / (torch.getOrDefault(s.name() + ".pipeline_us", Double.NaN) * 1e-6);
      double eagerTokS = tokens / (torch.getOrDefault(s.name() + ".eager_us", Double.NaN) * 1e-6);
      double fp8Tflops = flops / (fp8Ms * 1e-3) / 1e12;
      out.printf("%-14s %5d %5d %4d %2d | %9.3f %8.1f %8s %6s | %9s %8s %8s | %10.0f %10s %7s %10s %7s | %10.0f%n",
          s.name(), h, s.inter(), s.experts(), s.topK(), ffnMs, tflops, fmt("%.1f", torchTflops),
          fmt("%.2fx", tflops / torchTflops), fmt("%.3f", fp8Ms), fmt("%.1f", fp8Tflops),
          fmt("%.2fx", fp8Tflops / tflops), tokS, fmt("%.0f", pipeTokS), fmt("%.2fx", tokS / pipeTokS), fmt("%.0f", eagerTokS),
          fmt("%.2fx", tokS / eagerTokS), tokens / arraySec);
      return 0;
    }
  }

  /** Whether to print forwardDevice's stage timeline: system property {@code moespark.bench.trace} (default false). */
  static final boolean TRACE = Boolean.getBoolean("moespark.bench.trace");

  /**
   * One forwardDevice call's stages (after two traced warm-up calls): device time since the previous stage
   * (kernels and idle gaps) and host time (enqueueing, synchronizations).
   */
  private static void trace(MoeLayerGpu g, DeviceBuffer xd, int tokens, DeviceBuffer yd, String shape,
      PrintStream out) {
    try (StreamTimeline t = new StreamTimeline()) {
      g.trace(t);
      long call = 0;
      try {
        for (int i = 0; i < 3; i++) {
          t.clear();
          long t0 = System.nanoTime();
          g.forwardDevice(xd, tokens, yd);
          call = System.nanoTime() - t0;
        }
      } finally {
        g.trace(null);
      }
      StringBuilder line = new StringBuilder();
      double dev = 0;
      double host = 0;
      for (StreamTimeline.Stage st : t.report()) {
        line.append(String.format(" | %s %.3f/%.3f", st.name(), st.deviceMs(), st.hostMs()));
        dev += st.deviceMs();
        host += st.hostMs();
      }
      out.printf("%-14s trace (device/host ms per stage)%s | total %.3f/%.3f; the call %.3f ms%n", shape, line, dev,
          host, call / 1e6);
    }
  }

  /** Whether to time the FP8 FFN: system property {@code moespark.bench.fp8} (default true). */
  static final boolean FP8 = Boolean.parseBoolean(System.getProperty("moespark.bench.fp8", "true"));

  /** FP8 GEMM variants to time: system property {@code moespark.bench.fp8.variants} (default 4,5). */
  static final int[] FP8_VARIANTS = java.util.Arrays.stream(System.getProperty("moespark.bench.fp8.variants", "4,5")
      .split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();

  /**
   * The FFN with FP8 GEMMs on the same rows: a second layer from the same seed (the same bf16 weights,
   * quantized 128×128 on the device), validated against the bf16 FFN's output {@code ref}; ms per call, or
   * NaN when validation fails (printed).
   */
  private static double fp8Ffn(Shape s, RouterSpec rs, DeviceBuffer xp, DeviceBuffer ref, int[] offsets, long rows,
      int h, int iters, int tokens, double bf16LayerSec, PrintStream out) {
    int fp8Variant = GroupedGemmFp8.variant();
    try (MoeLayerGpu f = MoeLayerGpu.random(rs, s.inter(), GatedActivation.SWIGLU, false, Compute.BF16,
        GemmPrecision.FP8, 11); DeviceBuffer o8 = f.allocate(2 * rows * h, "fp8 out")) {
      o8.fill(0x7f, f.stream());
      f.expertFfn(xp, offsets, o8);
      f.stream().synchronize();
      // relative error of the FP8 FFN against the bf16 FFN (same weights before quantization), sampled rows
      double num = 0;
      double den = 0;
      int samples = 64;
      for (int i = 0; i < samples; i++) {
        long row = rows * i / samples;
        short[] a = o8.view(2 * row * h, 2L * h).toShorts(h);
        short[] b = ref.view(2 * row * h, 2L * h).toShorts(h);
        for (int c = 0; c < h; c++) {
          double d = Bf16.decode(a[c]) - Bf16.decode(b[c]);
          num += d * d;
          den += (double) Bf16.decode(b[c]) * Bf16.decode(b[c]);
        }
      }
      double err = Math.sqrt(num / Math.max(den, 1e-30));
      if (!(err <= 0.1)) {
        out.printf("%-14s fp8 validation FAILED: relative error %.3e vs the bf16 FFN%n", s.name(), err);
        return Double.NaN;
      }
      // every FP8 kernel variant (validated with the default one above; a variant that differs in more than
      // the last bits would show as a changed check value), best one reported
      double best = Double.POSITIVE_INFINITY;
      StringBuilder per = new StringBuilder();
      for (int v : FP8_VARIANTS) {
        GroupedGemmFp8.setVariant(v);
        f.expertFfn(xp, offsets, o8); // warm-up
        double ms = f.stream().time(() -> {
          for (int i = 0; i < iters; i++) {
            f.expertFfn(xp, offsets, o8);
          }
        }) / iters;
        per.append(String.format(" v%d %.3f ms", v, ms));
        best = Math.min(best, ms);
      }
      out.printf("%-14s fp8 ffn per FP8 GEMM variant:%s (check vs bf16 ffn %.1e; %.1f GiB of e4m3 weights + "
          + "scales)%n", s.name(), per, err, f.weightBytes() / (double) (1L << 30));
      // the whole FP8 layer (the tokens quantized once before the permute, as forwardDevice runs it), default variant
      GroupedGemmFp8.setVariant(fp8Variant);
      double layerSec = layerSeconds(f, s, tokens, out);
      out.printf("%-14s fp8 layer %.0f tok/s, %.2fx our bf16 layer%n", s.name(), tokens / layerSec,
          bf16LayerSec / layerSec);
      return best;
    } catch (RuntimeException e) {
      out.printf("%-14s fp8 ffn FAILED: %s%n", s.name(), e);
      return Double.NaN;
    } finally {
      GroupedGemmFp8.setVariant(fp8Variant);
    }
  }

  private static String fmt(String f, double v) {
    return Double.isNaN(v) ? "-" : String.format(f, v);
  }

  /** Relative error of two FFN output rows against double loops over the device's bf16 weights and rows. */
  private static double validate(MoeLayerGpu g, DeviceBuffer xp, DeviceBuffer o, int[] offsets, int h, int ip) {
    int last = offsets.length - 2;
    int[][] picks = {{0, offsets[0]}, {last, offsets[last + 1] - 1}};
    double num = 0;
    double den = 0;
    for (int[] p : picks) {
      int e = p[0];
      long row = p[1];
      short[] xr = xp.view(2 * row * h, 2L * h).toShorts(h);
      short[] yr = o.view(2 * row * h, 2L * h).toShorts(h);
      short[] gu = g.expertWeightsBf16(e, true);
      short[] dn = g.expertWeightsBf16(e, false);
      double[] act = new double[ip];
      for (int i = 0; i < ip; i++) {
        int gr = (i >> 3) * 16 + (i & 7);
        double gs = 0;
        double us = 0;
        for (int c = 0; c < h; c++) {
          double xv = Bf16.decode(xr[c]);
          gs += xv * Bf16.decode(gu[gr * h + c]);
          us += xv * Bf16.decode(gu[(gr + 8) * h + c]);
        }
        act[i] = gs / (1 + Math.exp(-gs)) * us;
      }
      for (int c = 0; c < h; c++) {
        double ref = 0;
        for (int i = 0; i < ip; i++) {
          ref += act[i] * Bf16.decode(dn[c * ip + i]);
        }
        double d = Bf16.decode(yr[c]) - ref;
        num += d * d;
        den += ref * ref;
      }
    }
    return Math.sqrt(num / Math.max(den, 1e-30));
  }
}
