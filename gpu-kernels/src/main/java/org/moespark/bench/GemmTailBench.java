package org.moespark.bench;

import java.util.Arrays;
import java.util.Random;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.layer.GatedActivation;
import org.moespark.layer.GroupedGemm;
import org.moespark.layer.GroupedGemmFp8;

/**
 * Grouped GEMM variant 4 time against the rows per expert, at DeepSeek-V3's gate/up (SwiGLU epilogue, as in the layer) and down (bf16 store) shapes: what an
 * expert's partly filled last 128-row tile costs. Each row of the output is one row-count setting: every expert
 * the same count, or {@code routed} = the counts of a uniform random top-k routing of T tokens (what the layer
 * sees: DeepSeek-V3 at T = 16,384, k = 8 gives 512 ± 23 rows per expert). Constant bf16 operands (the time does
 * not depend on the values; constant data runs cooler, so absolute rates are optimistic).
 * {@code java -cp "$(cat CLASSPATH_FILE)" org.moespark.bench.GemmTailBench} on the GPU machine; system properties
 * {@code moespark.bench.rows} (comma list, {@code routed} allowed; default 512,520,560,576,584,640,routed),
 * {@code moespark.bench.variants} (default 4), {@code moespark.bench.models} (comma list of
 * {@code hidden:intermediate:experts:topK}; default DeepSeek-V3's 7168:2048:256:8) and
 * {@code moespark.bench.precision} ({@code bf16}, the default, or {@code fp8}: the same GEMMs through
 * {@link GroupedGemmFp8} on e4m3 operands with constant 1×128 / 128×128 scales; the variants are then FP8 variants).
 */
public final class GemmTailBench {
  private GemmTailBench() {}

  public static void main(String[] args) {
    if (!NativeLibrary.isAvailable()) {
      System.out.println("GemmTailBench: GPU backend " + NativeLibrary.describe());
      System.exit(1);
    }
    int tokens = 16384;
    // hidden:intermediate:experts:topK per model (default DeepSeek-V3); each gives its gate/up and down GEMM
    String[] models = System.getProperty("moespark.bench.models", "7168:2048:256:8").split(",");
    String[] per = System.getProperty("moespark.bench.rows", "512,520,560,576,584,640,routed").split(",");
    int[] variants = Arrays.stream(System.getProperty("moespark.bench.variants", "4").split(","))
        .mapToInt(Integer::parseInt).toArray();
    String precision = System.getProperty("moespark.bench.precision", "bf16").trim();
    if (!precision.equals("bf16") && !precision.equals("fp8")) {
      throw new IllegalArgumentException("moespark.bench.precision must be bf16 or fp8, got '" + precision + "'");
    }
    boolean fp8 = precision.equals("fp8");
    int fp8Before = GroupedGemmFp8.variant();
    try (CudaStream s = CudaStream.create(); DeviceAllocator a = new DeviceAllocator("GemmTailBench", s)) {
      for (String model : models) {
        int[] m = Arrays.stream(model.trim().split(":")).mapToInt(Integer::parseInt).toArray();
        benchModel(a, s, tokens, m[0], m[1], m[2], m[3], per, variants, fp8);
      }
    } finally {
      GroupedGemm.setVariant(4);
      GroupedGemmFp8.setVariant(fp8Before);
    }
  }

  /** The gate/up (SwiGLU epilogue, n / 2 bf16 activations, as the layer runs it) and down (bf16 store) GEMMs. */
  private static void benchModel(DeviceAllocator a, CudaStream s, int tokens, int hidden, int inter, int e, int topK,
      String[] per, int[] variants, boolean fp8) {
    for (int[] sh : new int[][] {{2 * inter, hidden, 1}, {hidden, inter, 0}}) {  // n, k, gate/up
      int n = sh[0];
      int k = sh[1];
      boolean gateUp = sh[2] == 1;
      long rowsMax = Math.max((long) tokens * topK, 640L * e);
      int elem = fp8 ? 1 : 2;
      long kb = GroupedGemmFp8.blocks(k);
      try (DeviceBuffer x = a.allocate(elem * rowsMax * k, "a"); DeviceBuffer w = a.allocate(elem * e * n * k, "b");
          DeviceBuffer c = a.allocate(2 * rowsMax * n, "c");
          DeviceBuffer xs = a.allocate(fp8 ? 4 * rowsMax * kb : 4, "a scales");
          DeviceBuffer ws = a.allocate(fp8 ? 4L * e * GroupedGemmFp8.blocks(n) * kb : 4, "b scales")) {
        x.fill(0x3c, s);
        w.fill(0x3c, s);
        xs.fill(0x3c, s);
        ws.fill(0x3c, s);
        for (String r : per) {
          int[] off = r.trim().equals("routed") ? routedOffsets(tokens, topK, e, 7)
              : evenOffsets(e, Integer.parseInt(r.trim()));
          long tiles = 0;
          for (int i = 0; i < e; i++) {
            tiles += (long) ((off[i + 1] - off[i] + 127) / 128) * ((n + 255) / 256);
          }
          GroupedGemm.Epilogue epi = gateUp ? GroupedGemm.Epilogue.SWIGLU : GroupedGemm.Epilogue.STORE_BF16;
          GatedActivation act = gateUp ? GatedActivation.SWIGLU : null;
          long ldc = gateUp ? n / 2 : n;
          Runnable run = fp8
              ? () -> GroupedGemmFp8.gemm(a, x, k, xs, off, w, k, ws, n, k, null, epi, true, act, c, ldc)
              : () -> GroupedGemm.gemm(a, x, k, off, w, k, n, k, null, epi, true, act, c, ldc);
          for (int v : variants) {
            if (fp8) {
              GroupedGemmFp8.setVariant(v);
            } else {
              GroupedGemm.setVariant(v);
            }
            run.run();
            float ms = s.time(() -> {
              for (int i = 0; i < 5; i++) {
                run.run();
              }
            }) / 5;
            double tflops = 2.0 * off[e] * n * k / (ms * 1e-3) / 1e12;
            System.out.printf("%sv%d %s n %d k %d E %d rows/expert %s (%d rows): %.3f ms, %.1f TFLOP/s, %d tiles, %.2f us "
                + "per tile-SM%n", fp8 ? "fp8 " : "", v, gateUp ? "gate/up" : "down", n, k, e, r.trim(), off[e], ms, tflops, tiles,
                ms * 1e3 * 132 / tiles);
          }
        }
      }
    }
  }

  static int[] evenOffsets(int experts, int rows) {
    int[] off = new int[experts + 1];
    for (int i = 0; i <= experts; i++) {
      off[i] = i * rows;
    }
    return off;
  }

  /** Segment offsets of a uniform random top-k routing: each token picks k distinct experts. */
  static int[] routedOffsets(int tokens, int topK, int experts, long seed) {
    Random rnd = new Random(seed);
    int[] count = new int[experts];
    boolean[] picked = new boolean[experts];
    int[] chosen = new int[topK];
    for (int t = 0; t < tokens; t++) {
      for (int j = 0; j < topK; j++) {
        int x;
        do {
          x = rnd.nextInt(experts);
        } while (picked[x]);
        picked[x] = true;
        chosen[j] = x;
        count[x]++;
      }
      for (int j = 0; j < topK; j++) {
        picked[chosen[j]] = false;
      }
    }
    int[] off = new int[experts + 1];
    for (int i = 0; i < experts; i++) {
      off[i + 1] = off[i] + count[i];
    }
    return off;
  }
}
