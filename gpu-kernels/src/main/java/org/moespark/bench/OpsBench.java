package org.moespark.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.formats.ActQuantGpu;
import org.moespark.formats.Bf16;
import org.moespark.formats.BlockFp8;
import org.moespark.ops.FusedTransposeSplitQuant;
import org.moespark.ops.FusedTransposeSplitQuantGpu;
import org.moespark.ops.MoePermute;
import org.moespark.ops.MoePermuteGpu;
import org.moespark.ops.MoeUnpermute;
import org.moespark.ops.Routing;
import org.moespark.ops.RoutingGpu;

/**
 * GPU benchmark of the data-movement ops at real model shapes: achieved GB/s in "unique bytes"
 * (performance-anchors.md: permute = (T + T·k)·H·bytes, unpermute = (T·k + T)·H·bytes) next to a
 * device-to-device copy of the same byte count measured in the same process, and, when given the
 * PyTorch baseline file written by {@code tools/bench/torch_ops_baseline.py} in the same run, the
 * ratio to PyTorch's index_select gather and eager unpermute. Also, per shape, the FP8 1×128
 * activation quant and fused_transpose_split_quant (unique bytes = bf16 read + E4M3 and fp32 scales
 * written; PyTorch eager quant baselines), and the routers at {@value #ROUTING_TOKENS} tokens
 * (DeepSeek-V3 grouped sigmoid over 256 experts, softmax top-8 over 256 and 128, fp32 and bf16
 * logits). Validates every kernel against the CPU reference (on a subset) before timing.
 * Results: {@code benchmarks/quant-routing-gpu.md}.
 *
 * <p>Usage: {@code OpsBench [--tokens 16384] [--iters 20] [--torch baseline.txt]}
 */
public final class OpsBench {
  /** A benchmark shape (hidden, experts, top-k) of a real model. */
  record Shape(String name, int hidden, int experts, int topK) {}

  static final List<Shape> SHAPES = List.of(new Shape("mixtral", 4096, 8, 2), new Shape("qwen3-30b-a3b", 2048, 128, 8),
      new Shape("olmoe", 2048, 64, 8), new Shape("deepseek-v3", 7168, 256, 8));

  private OpsBench() {}

  public static void main(String[] args) throws IOException {
    int tokens = 16384;
    int iters = 20;
    Path torch = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--tokens" -> tokens = Integer.parseInt(args[++i]);
        case "--iters" -> iters = Integer.parseInt(args[++i]);
        case "--torch" -> torch = Path.of(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    System.exit(run(tokens, iters, torch, System.out));
  }

  public static int run(int tokens, int iters, Path torchBaseline, PrintStream out) throws IOException {
    if (!NativeLibrary.isAvailable()) {
      out.println("bench ops: GPU backend " + NativeLibrary.describe());
      return 1;
    }
    Map<String, Double> torch = torchBaseline == null ? Map.of() : BenchSupport.readBaseline(torchBaseline);
    out.println("# moespark ops benchmark — " + NativeLibrary.describe());
    out.printf("# tokens %d, bf16, %d timed iterations after warm-up; GB/s = unique bytes / time%n", tokens, iters);
    out.printf("%-14s %-10s %9s %9s %9s %8s %12s%n", "shape", "op", "time_us", "GB/s", "copy_GB/s", "vs_copy",
        "vs_torch");
    try (CudaStream s = CudaStream.create(); DeviceAllocator alloc = new DeviceAllocator("OpsBench", s)) {
      overheads(alloc, s, iters, out);
      for (Shape shape : SHAPES) {
        benchShape(shape, tokens, iters, alloc, s, torch, out);
        benchQuant(shape, tokens, iters, alloc, s, torch, out);
      }
      benchRouting(ROUTING_TOKENS, iters, alloc, s, torch, out);
    }
    return 0;
  }

  /** Tokens of the routing benchmark (performance-anchors.md §6.3: ≤ 20 µs at 65536 × 256). */
  static final int ROUTING_TOKENS = 65536;

  /**
   * FP8 quantization at the shape's hidden size: the 1×128 activation quant of {@code x [T, H]} bf16
   * (DeepSeek rule; unique bytes = 2·T·H read + T·H + 4·T·H/128 written) and fused_transpose_split_quant
   * of the permuted activations ({@code m = Σ_e pad128(tokens of e)} rows, same byte formula). Both are
   * validated bit for bit against the CPU reference on a sub-problem first.
   */
  private static void benchQuant(Shape sh, int tokens, int iters, DeviceAllocator alloc, CudaStream s,
      Map<String, Double> torch, PrintStream out) {
    SplittableRandom rnd = new SplittableRandom(7);
    int h = sh.hidden();
    validateQuant(alloc, h, rnd);
    long quantBytes = 3L * tokens * h + 4L * tokens * ActQuantGpu.scaleCols(h);
    try (DeviceBuffer x = alloc.allocate(2L * tokens * h, "quant x")) {
      fillPattern(alloc, x, rnd);
      float copyMs;
      try (DeviceBuffer a = alloc.allocate(quantBytes / 2, "copy a"); DeviceBuffer b = alloc.allocate(quantBytes / 2,
          "copy b")) {
        copyMs = BenchSupport.time(s, iters, () -> b.copyFromDevice(a, 0, 0, a.size(), s));
      }
      double copyGbs = quantBytes / (copyMs * 1e6);
      float quantMs = BenchSupport.time(s, iters, () -> ActQuantGpu.quantize(alloc, BlockFp8.ScaleRule.DEEPSEEK,
          ActQuantGpu.Input.BF16, x, tokens, h, false).close());
      report(out, sh, "quant1x128", quantMs, quantBytes, copyGbs, torch.getOrDefault(sh.name() + ".quant_us", Double.NaN));
    }
    // tokens per expert of a uniform top-k routing, each padded to a multiple of 128
    int[] tpe = new int[sh.experts()];
    for (int t = 0; t < tokens; t++) {
      for (int id : rnd.ints(0, sh.experts()).distinct().limit(sh.topK()).toArray()) {
        tpe[id]++;
      }
    }
    int m = 0;
    for (int e = 0; e < tpe.length; e++) {
      tpe[e] = (tpe[e] + 127) / 128 * 128;
      m += tpe[e];
    }
    int rows = m;
    long ftsqBytes = 3L * rows * h + 4L * (rows / 128) * h;
    try (DeviceBuffer x = alloc.allocate(2L * rows * h, "ftsq x")) {
      fillPattern(alloc, x, rnd);
      float copyMs;
      try (DeviceBuffer a = alloc.allocate(ftsqBytes / 2, "copy a"); DeviceBuffer b = alloc.allocate(ftsqBytes / 2,
          "copy b")) {
        copyMs = BenchSupport.time(s, iters, () -> b.copyFromDevice(a, 0, 0, a.size(), s));
      }
      double copyGbs = ftsqBytes / (copyMs * 1e6);
      float ftsqMs = BenchSupport.time(s, iters, () -> FusedTransposeSplitQuantGpu.quantize(alloc, x, rows, h, tpe, false).close());
      report(out, sh, "ftsq", ftsqMs, ftsqBytes, copyGbs, torch.getOrDefault(sh.name() + ".ftsq_us", Double.NaN));
    }
  }

  /** 1×128 quant and fused_transpose_split_quant on 512 rows of width h, bit for bit against the CPU. */
  private static void validateQuant(DeviceAllocator alloc, int h, SplittableRandom rnd) {
    int rows = 512;
    short[] x = new short[rows * h];
    float[] xf = new float[rows * h];
    for (int i = 0; i < x.length; i++) {
      x[i] = Bf16.encode((float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(-4, 5))));
      xf[i] = Bf16.decode(x[i]);
    }
    byte[] q = new byte[rows * h];
    float[] sc = new float[rows * (int) ActQuantGpu.scaleCols(h)];
    BlockFp8.quantizeActivationsDeepSeek(xf, rows, h, false, q, sc);
    int[] tpe = {128, 0, 256, 128};
    FusedTransposeSplitQuant.Result ref = FusedTransposeSplitQuant.quantize(x, rows, h, tpe, false);
    try (DeviceBuffer dx = alloc.upload(x, "v x");
        ActQuantGpu.DeviceResult g = ActQuantGpu.quantize(alloc, BlockFp8.ScaleRule.DEEPSEEK, ActQuantGpu.Input.BF16, dx,
            rows, h, false);
        FusedTransposeSplitQuantGpu.DeviceResult f = FusedTransposeSplitQuantGpu.quantize(alloc, dx, rows, h, tpe,
            false)) {
      if (!Arrays.equals(q, g.q().toBytes(q.length)) || !Arrays.equals(sc, g.scales().toFloats(sc.length))) {
        throw new IllegalStateException("validation failed: GPU 1x128 quant differs from BlockFp8 (H = " + h + ")");
      }
      for (int e = 0; e < tpe.length; e++) {
        if (!Arrays.equals(ref.outs()[e], f.out(e).toBytes(ref.outs()[e].length))
            || !Arrays.equals(ref.scales()[e], f.scales(e).toFloats(ref.scales()[e].length))) {
          throw new IllegalStateException("validation failed: GPU fused_transpose_split_quant differs from the CPU"
              + " reference (H = " + h + ", expert " + e + ")");
        }
      }
    }
  }

  /**
   * Router time at {@code tokens} × E: DeepSeek-V3 (sigmoid, bias, 8 groups keep 4, top-8, 256 experts)
   * and softmax top-8 over 256 and 128 experts, with fp32 and bf16 logits. GB/s counts logits read +
   * ids and weights written. Validated against {@link Routing} on 1024 tokens first: weights within a
   * relative 1e-5, ids equal (random logits: a near-tie mismatch is reported, not hidden).
   */
  private static void benchRouting(int tokens, int iters, DeviceAllocator alloc, CudaStream s, Map<String, Double> torch,
      PrintStream out) {
    SplittableRandom rnd = new SplittableRandom(11);
    int maxE = 256;
    float[] host = new float[tokens * maxE];
    short[] hostBf = new short[host.length];
    for (int i = 0; i < host.length; i++) {
      hostBf[i] = Bf16.encode((float) (rnd.nextDouble() * 8 - 4));
      host[i] = Bf16.decode(hostBf[i]);
    }
    float[] bias = new float[maxE];
    for (int i = 0; i < maxE; i++) {
      bias[i] = (float) (rnd.nextDouble() * 0.2 - 0.1);
    }
    try (DeviceBuffer lf = alloc.upload(host, "logits f32"); DeviceBuffer lb = alloc.upload(hostBf, "logits bf16");
        DeviceBuffer db = alloc.upload(bias, "bias");
        DeviceBuffer ids = alloc.allocate(4L * tokens * 8, "ids"); DeviceBuffer w = alloc.allocate(4L * tokens * 8, "w")) {
      long copyBytes = 4L * tokens * maxE;
      float copyMs;
      try (DeviceBuffer a = alloc.allocate(copyBytes / 2, "copy a"); DeviceBuffer b = alloc.allocate(copyBytes / 2,
          "copy b")) {
        copyMs = BenchSupport.time(s, iters, () -> b.copyFromDevice(a, 0, 0, a.size(), s));
      }
      double copyGbs = copyBytes / (copyMs * 1e6);
      out.printf("# routing at %d tokens (logits read + ids/weights written; vs_copy = GB/s over the copy's)%n", tokens);
      for (RoutingGpu.LogitsType type : RoutingGpu.LogitsType.values()) {
        DeviceBuffer l = type == RoutingGpu.LogitsType.F32 ? lf : lb;
        String t = type == RoutingGpu.LogitsType.F32 ? "f32" : "bf16";
        // DeepSeek-V3
        validateRouting("deepseek", host, maxE, bias, l, db, type, alloc);
        float dsMs = BenchSupport.time(s, iters, () -> RoutingGpu.sigmoidGroupedTopK(l, type, tokens, 256, 8, db, 8, 4, true, 2.5f,
            Routing.GroupMask.NEG_INF, ids, w, s));
        report(out, new Shape("deepseek-v3", 0, 256, 8), "route-" + t, dsMs, (long) type.bytes * tokens * 256
            + 8L * tokens * 8, copyGbs, torch.getOrDefault("routing.deepseek_us", Double.NaN));
        // softmax top-8 over 256 experts (rows of the same buffer, E = 256)
        validateRouting("softmax", host, maxE, null, l, db, type, alloc);
        float smMs = BenchSupport.time(s, iters, () -> RoutingGpu.softmaxTopK(l, type, tokens, 256, 8, true, ids, w, s));
        report(out, new Shape("softmax-e256", 0, 256, 8), "route-" + t, smMs, (long) type.bytes * tokens * 256
            + 8L * tokens * 8, copyGbs, torch.getOrDefault("routing.softmax256_us", Double.NaN));
        float qwMs = BenchSupport.time(s, iters, () -> RoutingGpu.softmaxTopK(l, type, tokens, 128, 8, true, ids, w, s));
        report(out, new Shape("qwen3-30b-a3b", 0, 128, 8), "route-" + t, qwMs, (long) type.bytes * tokens * 128
            + 8L * tokens * 8, copyGbs, torch.getOrDefault("routing.softmax128_us", Double.NaN));
      }
    }
  }

  private static void validateRouting(String mode, float[] host, int e, float[] bias, DeviceBuffer logits,
      DeviceBuffer dBias, RoutingGpu.LogitsType type, DeviceAllocator alloc) {
    int sub = 1024;
    float[] x = Arrays.copyOf(host, sub * e);
    Routing.Result cpu = mode.equals("deepseek")
        ? Routing.sigmoidGroupedTopK(x, sub, e, 8, bias, 8, 4, true, 2.5f)
        : Routing.softmaxTopK(x, sub, e, 8, true);
    try (RoutingGpu.DeviceResult g = mode.equals("deepseek")
        ? RoutingGpu.sigmoidGroupedTopK(alloc, logits, type, sub, e, 8, dBias, 8, 4, true, 2.5f, Routing.GroupMask.NEG_INF)
        : RoutingGpu.softmaxTopK(alloc, logits, type, sub, e, 8, true)) {
      Routing.Result r = g.toHost();
      int mismatched = 0;
      for (int t = 0; t < sub; t++) {
        if (!Arrays.equals(cpu.ids(), t * 8, t * 8 + 8, r.ids(), t * 8, t * 8 + 8)) {
          mismatched++;
        }
      }
      double num = 0;
      double den = 0;
      for (int i = 0; i < r.weights().length; i++) {
        num += Math.pow(r.weights()[i] - cpu.weights()[i], 2);
        den += Math.pow(cpu.weights()[i], 2);
      }
      double rel = Math.sqrt(num / den);
      if (mismatched > sub / 200 || (mismatched == 0 && !(rel <= 1e-5))) {
        throw new IllegalStateException("validation failed: GPU " + mode + " routing (" + type + "): " + mismatched
            + " of " + sub + " tokens with different ids, weight error " + rel);
      }
      if (mismatched > 0) {
        System.out.printf("# note: %s routing (%s): %d of %d validation tokens differ at near-ties%n", mode, type,
            mismatched, sub);
      }
    }
  }

  /** Fills a device buffer with random bf16 values: one 32 MiB random block, replicated on the device. */
  private static void fillPattern(DeviceAllocator alloc, DeviceBuffer x, SplittableRandom rnd) {
    int n = (int) Math.min(x.size() / 2, 16L << 20);
    short[] block = new short[n];
    for (int i = 0; i < n; i++) {
      block[i] = Bf16.encode((float) rnd.nextGaussian());
    }
    try (DeviceBuffer b = alloc.upload(block, "pattern")) {
      long bytes = 2L * n;
      for (long off = 0; off < x.size(); off += bytes) {
        x.copyFromDevice(b, 0, off, Math.min(bytes, x.size() - off), alloc.stream());
      }
    }
  }

  private static void benchShape(Shape sh, int tokens, int iters, DeviceAllocator alloc, CudaStream s,
      Map<String, Double> torch, PrintStream out) {
    SplittableRandom rnd = new SplittableRandom(42);
    int k = sh.topK();
    int e = sh.experts();
    int h = sh.hidden();
    int[] route = new int[tokens * k];
    float[] probs = new float[tokens * k];
    int[] tpe = new int[e];
    for (int t = 0; t < tokens; t++) {
      int[] ids = rnd.ints(0, e).distinct().limit(k).toArray();
      for (int j = 0; j < k; j++) {
        route[t * k + j] = ids[j];
        probs[t * k + j] = 1f / k;
        tpe[ids[j]]++;
      }
    }
    long rowBytes = 2L * h;
    long permuteBytes = (long) (tokens + (long) tokens * k) * rowBytes;
    try (DeviceBuffer dRoute = alloc.upload(route, "route"); DeviceBuffer dProbs = alloc.upload(probs, "probs");
        DeviceBuffer x = alloc.allocate(rowBytes * tokens, "x");
        DeviceBuffer copySrc = alloc.allocate(permuteBytes / 2, "copy src");
        DeviceBuffer copyDst = alloc.allocate(permuteBytes / 2, "copy dst")) {
      BenchSupport.fillRandomBf16(x, rnd);
      validate(alloc, dRoute, dProbs, x, route, probs, tpe, tokens, k, e, h);
      // Device-to-device copy moving the same number of bytes (read + write = permuteBytes).
      float copyMs = BenchSupport.time(s, iters, () -> copySrc.copyFromDevice(copyDst, 0, 0, copyDst.size(), s));
      double copyGbs = permuteBytes / (copyMs * 1e6);

      float mapsMs = BenchSupport.time(s, iters, () -> MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, k, e, tpe, 1).close());
      try (MoePermuteGpu.DeviceMaps maps = MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, k, e, tpe, 1)) {
        float gatherMs = BenchSupport.time(s, iters, () -> MoePermuteGpu.gather(alloc, maps, x, rowBytes).close());
        float rowsMs = BenchSupport.time(s, iters, () -> MoePermuteGpu.permuteRows(alloc, maps, x, rowBytes).close());
        float permuteMs = mapsMs + rowsMs;
        report(out, sh, "maps", mapsMs, 0, copyGbs, Double.NaN);
        report(out, sh, "gather", gatherMs, permuteBytes, copyGbs, torch.getOrDefault(sh.name() + ".gather_us", Double.NaN));
        report(out, sh, "rows", rowsMs, permuteBytes, copyGbs, torch.getOrDefault(sh.name() + ".gather_us", Double.NaN));
        report(out, sh, "permute", permuteMs, permuteBytes, copyGbs,
            torch.getOrDefault(sh.name() + ".sort_gather_us", Double.NaN));
        try (DeviceBuffer xu = MoePermuteGpu.permuteRows(alloc, maps, x, rowBytes)) {
          float unpermuteMs = BenchSupport.time(s, iters, () -> MoePermuteGpu.unpermute(alloc, true, xu, maps.rows, h, maps.rowmap,
              dRoute, maps.tokenProbUnzipped, tokens, k, e, true).close());
          report(out, sh, "unpermute", unpermuteMs, permuteBytes, copyGbs,
              torch.getOrDefault(sh.name() + ".unpermute_us", Double.NaN));
        }
      }
    }
  }

  /** Fixed costs that bound small-batch latency: a stream sync, an allocate/free pair, maps of one token. */
  private static void overheads(DeviceAllocator alloc, CudaStream s, int iters, PrintStream out) {
    float syncMs = BenchSupport.time(s, iters * 10, s::synchronize);
    float allocMs = BenchSupport.time(s, iters * 10, () -> alloc.allocate(1 << 20, "probe").close());
    float uploadMs = BenchSupport.time(s, iters * 10, () -> alloc.upload(new int[64], "probe").close());
    int[] route = {0, 1};
    try (DeviceBuffer r = alloc.upload(route, "route"); DeviceBuffer p = alloc.upload(new float[2], "probs")) {
      float mapsMs = BenchSupport.time(s, iters * 10, () -> MoePermuteGpu.maps(alloc, r, p, 1, 2, 8, new int[] {1, 1, 0, 0, 0, 0, 0, 0}, 1).close());
      out.printf("# overheads: stream sync %.1f us, allocate+free %.1f us, 256 B pageable upload %.1f us, maps of 1 token %.1f us%n",
          syncMs * 1000, allocMs * 1000, uploadMs * 1000, mapsMs * 1000);
    }
  }

  /** Checks the GPU maps and a gathered + unpermuted result against the CPU reference on a prefix of tokens. */
  private static void validate(DeviceAllocator alloc, DeviceBuffer dRoute, DeviceBuffer dProbs, DeviceBuffer x,
      int[] route, float[] probs, int[] tpe, int tokens, int k, int e, int h) {
    int sub = Math.min(tokens, 512);
    int[] r = java.util.Arrays.copyOf(route, sub * k);
    float[] p = java.util.Arrays.copyOf(probs, sub * k);
    int[] hist = new int[e];
    for (int id : r) {
      hist[id]++;
    }
    short[] xs = new short[sub * h];
    x.copyTo(xs);
    MoePermute.Maps cpu = MoePermute.maps(r, p, sub, k, e, hist, 1);
    try (DeviceBuffer dr = alloc.upload(r, "v route"); DeviceBuffer dp = alloc.upload(p, "v probs");
        DeviceBuffer dx = alloc.upload(xs, "v x");
        MoePermuteGpu.DeviceMaps g = MoePermuteGpu.maps(alloc, dr, dp, sub, k, e, hist, 1);
        DeviceBuffer xu = MoePermuteGpu.permuteRows(alloc, g, dx, 2L * h);
        MoePermuteGpu.DeviceUnpermuted u = MoePermuteGpu.unpermute(alloc, true, xu, g.rows, h, g.rowmap, dr,
            g.tokenProbUnzipped, sub, k, e, true)) {
      if (!java.util.Arrays.equals(cpu.zippedExpertwiseRowmap(), g.rowmap.toInts(sub * e))) {
        throw new IllegalStateException("validation failed: GPU rowmap differs from the CPU reference");
      }
      short[] gathered = MoePermute.gather(cpu, xs, h);
      short[] ref = MoeUnpermute.unpermute(gathered, cpu.rows(), h, cpu.zippedExpertwiseRowmap(), r,
          cpu.tokenProbUnzipped(), sub, k, e, true, true).hiddenStates();
      if (!java.util.Arrays.equals(gathered, xu.toShorts(gathered.length))
          || !java.util.Arrays.equals(ref, u.hiddenStates().toShorts(ref.length))) {
        throw new IllegalStateException("validation failed: GPU rows differ from the CPU reference");
      }
    }
  }

  private static void report(PrintStream out, Shape sh, String op, float ms, long bytes, double copyGbs, double torchUs) {
    double us = ms * 1000.0;
    double gbs = bytes == 0 ? Double.NaN : bytes / (ms * 1e6);
    out.printf("%-14s %-10s %9.1f %9s %9.0f %8s %12s%n", sh.name(), op, us, bytes == 0 ? "-" : String.format("%.0f", gbs),
        copyGbs, bytes == 0 ? "-" : String.format("%.2fx", gbs / copyGbs),
        Double.isNaN(torchUs) ? "-" : String.format("%.2fx", torchUs / us));
  }

  static List<String> shapeNames() {
    List<String> n = new ArrayList<>();
    SHAPES.forEach(s -> n.add(s.name()));
    return n;
  }
}
