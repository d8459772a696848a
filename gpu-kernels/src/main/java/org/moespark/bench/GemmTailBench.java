package org.moespark.bench;

import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.layer.GroupedGemm;

/**
 * Grouped GEMM variant 4 time against the rows per expert (every expert the same count), at DeepSeek-V3's
 * gate/up and down shapes: what an expert's partly filled last 128-row tile costs. Constant bf16 operands
 * (the time does not depend on the values; constant data runs cooler, so absolute rates are
 * optimistic). {@code java -cp "$(cat CLASSPATH_FILE)" org.moespark.bench.GemmTailBench} on the GPU machine.
 */
public final class GemmTailBench {
  private GemmTailBench() {}

  public static void main(String[] args) {
    if (!NativeLibrary.isAvailable()) {
      System.out.println("GemmTailBench: GPU backend " + NativeLibrary.describe());
      System.exit(1);
    }
    int e = 256;
    int[][] shapes = {{4096, 7168}, {7168, 2048}};  // n, k
    int[] per = {512, 520, 560, 576, 584, 640};
    try (CudaStream s = CudaStream.create(); DeviceAllocator a = new DeviceAllocator("GemmTailBench", s)) {
      for (int[] sh : shapes) {
        int n = sh[0];
        int k = sh[1];
        long rowsMax = 640L * e;
        try (DeviceBuffer x = a.allocate(2 * rowsMax * k, "a"); DeviceBuffer w = a.allocate(2L * e * n * k, "b");
            DeviceBuffer c = a.allocate(2 * rowsMax * n, "c")) {
          x.fill(0x3c, s);
          w.fill(0x3c, s);
          for (int r : per) {
            int[] off = new int[e + 1];
            for (int i = 0; i <= e; i++) {
              off[i] = i * r;
            }
            GroupedGemm.setVariant(4);
            Runnable run = () -> GroupedGemm.gemm(a, x, k, off, w, k, n, k, null, GroupedGemm.Epilogue.STORE_BF16, true,
                null, c, n);
            run.run();
            float ms = s.time(() -> {
              for (int i = 0; i < 5; i++) {
                run.run();
              }
            }) / 5;
            long tiles = (long) e * ((r + 127) / 128) * (n / 256);
            double tflops = 2.0 * e * r * n * k / (ms * 1e-3) / 1e12;
            System.out.printf("n %d k %d rows/expert %d: %.3f ms, %.1f TFLOP/s, %d tiles, %.2f us per tile-SM%n", n, k,
                r, ms, tflops, tiles, ms * 1e3 * 132 / tiles);
          }
        }
      }
    }
  }
}
