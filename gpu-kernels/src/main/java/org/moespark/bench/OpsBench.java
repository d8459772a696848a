package org.moespark.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.ops.MoePermute;
import org.moespark.ops.MoePermuteGpu;
import org.moespark.ops.MoeUnpermute;

/**
 * GPU benchmark of the data-movement ops at real model shapes: achieved GB/s in "unique bytes"
 * (performance-anchors.md: permute = (T + T·k)·H·bytes, unpermute = (T·k + T)·H·bytes) next to a
 * device-to-device copy of the same byte count measured in the same process, and, when given the
 * PyTorch baseline file written by {@code tools/bench/torch_ops_baseline.py} in the same run, the
 * ratio to PyTorch's index_select gather and eager unpermute. Validates against the CPU reference
 * (on a token subset) before timing.
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
    Map<String, Double> torch = torchBaseline == null ? Map.of() : readBaseline(torchBaseline);
    out.println("# moespark ops benchmark — " + NativeLibrary.describe());
    out.printf("# tokens %d, bf16, %d timed iterations after warm-up; GB/s = unique bytes / time%n", tokens, iters);
    out.printf("%-14s %-10s %9s %9s %9s %8s %12s%n", "shape", "op", "time_us", "GB/s", "copy_GB/s", "vs_copy",
        "vs_torch");
    try (CudaStream s = CudaStream.create(); DeviceAllocator alloc = new DeviceAllocator("OpsBench", s)) {
      overheads(alloc, s, iters, out);
      for (Shape shape : SHAPES) {
        benchShape(shape, tokens, iters, alloc, s, torch, out);
      }
    }
    return 0;
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
      fillRandom(alloc, x, rnd);
      validate(alloc, dRoute, dProbs, x, route, probs, tpe, tokens, k, e, h);
      // Device-to-device copy moving the same number of bytes (read + write = permuteBytes).
      float copyMs = time(s, iters, () -> copySrc.copyFromDevice(copyDst, 0, 0, copyDst.size(), s));
      double copyGbs = permuteBytes / (copyMs * 1e6);

      float mapsMs = time(s, iters, () -> MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, k, e, tpe, 1).close());
      try (MoePermuteGpu.DeviceMaps maps = MoePermuteGpu.maps(alloc, dRoute, dProbs, tokens, k, e, tpe, 1)) {
        float gatherMs = time(s, iters, () -> MoePermuteGpu.gather(alloc, maps, x, rowBytes).close());
        float rowsMs = time(s, iters, () -> MoePermuteGpu.permuteRows(alloc, maps, x, rowBytes).close());
        float permuteMs = mapsMs + rowsMs;
        report(out, sh, "maps", mapsMs, 0, copyGbs, Double.NaN);
        report(out, sh, "gather", gatherMs, permuteBytes, copyGbs, torch.getOrDefault(sh.name() + ".gather_us", Double.NaN));
        report(out, sh, "rows", rowsMs, permuteBytes, copyGbs, torch.getOrDefault(sh.name() + ".gather_us", Double.NaN));
        report(out, sh, "permute", permuteMs, permuteBytes, copyGbs,
            torch.getOrDefault(sh.name() + ".sort_gather_us", Double.NaN));
        try (DeviceBuffer xu = MoePermuteGpu.permuteRows(alloc, maps, x, rowBytes)) {
          float unpermuteMs = time(s, iters, () -> MoePermuteGpu.unpermute(alloc, true, xu, maps.rows, h, maps.rowmap,
              dRoute, maps.tokenProbUnzipped, tokens, k, e, true).close());
          report(out, sh, "unpermute", unpermuteMs, permuteBytes, copyGbs,
              torch.getOrDefault(sh.name() + ".unpermute_us", Double.NaN));
        }
      }
    }
  }

  /** Fixed costs that bound small-batch latency: a stream sync, an allocate/free pair, maps of one token. */
  private static void overheads(DeviceAllocator alloc, CudaStream s, int iters, PrintStream out) {
    float syncMs = time(s, iters * 10, s::synchronize);
    float allocMs = time(s, iters * 10, () -> alloc.allocate(1 << 20, "probe").close());
    float uploadMs = time(s, iters * 10, () -> alloc.upload(new int[64], "probe").close());
    int[] route = {0, 1};
    try (DeviceBuffer r = alloc.upload(route, "route"); DeviceBuffer p = alloc.upload(new float[2], "probs")) {
      float mapsMs = time(s, iters * 10, () -> MoePermuteGpu.maps(alloc, r, p, 1, 2, 8, new int[] {1, 1, 0, 0, 0, 0, 0, 0}, 1).close());
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

  private static void fillRandom(DeviceAllocator alloc, DeviceBuffer x, SplittableRandom rnd) {
    short[] host = new short[(int) (x.size() / 2)];
    for (int i = 0; i < host.length; i++) {
      host[i] = org.moespark.formats.Bf16.encode((float) rnd.nextGaussian());
    }
    x.copyFrom(host);
  }

  private static float time(CudaStream s, int iters, Runnable op) {
    for (int i = 0; i < 3; i++) {
      op.run();
    }
    s.synchronize();
    long t0 = System.nanoTime();
    for (int i = 0; i < iters; i++) {
      op.run();
    }
    s.synchronize();
    return (System.nanoTime() - t0) / 1e6f / iters;
  }

  private static void report(PrintStream out, Shape sh, String op, float ms, long bytes, double copyGbs, double torchUs) {
    double us = ms * 1000.0;
    double gbs = bytes == 0 ? Double.NaN : bytes / (ms * 1e6);
    out.printf("%-14s %-10s %9.1f %9s %9.0f %8s %12s%n", sh.name(), op, us, bytes == 0 ? "-" : String.format("%.0f", gbs),
        copyGbs, bytes == 0 ? "-" : String.format("%.2fx", gbs / copyGbs),
        Double.isNaN(torchUs) ? "-" : String.format("%.2fx", torchUs / us));
  }

  /** Lines "name.metric_us value" (torch_ops_baseline.py). */
  static Map<String, Double> readBaseline(Path p) throws IOException {
    Map<String, Double> m = new LinkedHashMap<>();
    Pattern line = Pattern.compile("^(\\S+)\\s+([0-9.eE+-]+)$");
    for (String l : Files.readAllLines(p)) {
      Matcher mm = line.matcher(l.trim());
      if (mm.matches()) {
        m.put(mm.group(1), Double.parseDouble(mm.group(2)));
      }
    }
    return m;
  }

  static List<String> shapeNames() {
    List<String> n = new ArrayList<>();
    SHAPES.forEach(s -> n.add(s.name()));
    return n;
  }
}
