package org.moespark.bench;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.moespark.cuda.Cuda;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.cuda.PinnedBuffer;
import org.moespark.layer.Backend;
import org.moespark.layer.Compute;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.layer.MoeLayerGpu;
import org.moespark.layer.PinnedStaging;

/**
 * The Spark GPU path without Spark, on a real checkpoint: (1) {@code forwardDevice} on device-resident x
 * (the layer alone), (2) the same rows through {@link PinnedStaging} from pinned host memory (H2D, layer,
 * D2H, two slots) with 1 and with {@code threads} host threads sharing the layer, (3) the pinned H2D copy
 * rate of the same bytes. Ratios are to (1), measured in the same run.
 *
 * <pre>java -cp ... org.moespark.bench.StagingBench MODEL_DIR [tokens=16384] [chunks=16] [threads=4]</pre>
 */
public final class StagingBench {
  private StagingBench() {}

  public static void main(String[] a) throws Exception {
    if (a.length < 1) {
      System.err.println("usage: StagingBench MODEL_DIR [tokens=16384] [chunks=16] [threads=4]");
      System.exit(2);
    }
    NativeLibrary.requireAvailable();
    Path dir = Path.of(a[0]);
    int tokens = a.length > 1 ? Integer.parseInt(a[1]) : 16384;
    int chunks = a.length > 2 ? Integer.parseInt(a[2]) : 16;
    int threads = a.length > 3 ? Integer.parseInt(a[3]) : 4;
    Cuda.setDevice(0);
    try (MoeLayer l = MoeLayer.load(dir, 0, new LayerOptions(Backend.GPU, Compute.FP32))) {
      MoeLayerGpu g = l.gpu();
      int h = g.hiddenSize();
      long bytes = 4L * tokens * h;
      System.out.printf(Locale.ROOT, "staging bench: %s, H=%d E=%d k=%d, %d tokens per chunk (%.1f MB fp32), %s%n",
          dir, h, g.numExperts(), g.topK(), tokens, bytes / 1e6, Cuda.deviceInfo(0));
      float[] host = new float[tokens * h];
      SplittableRandom r = new SplittableRandom(1);
      for (int i = 0; i < host.length; i++) {
        host[i] = (float) r.nextGaussian();
      }
      // (1) the layer alone
      double layerTps;
      try (DeviceBuffer x = g.allocate(bytes, "x"); DeviceBuffer y = g.allocate(bytes, "y")) {
        x.copyFrom(host);
        g.forwardDevice(x, tokens, y); // warm-up
        g.forwardDevice(x, tokens, y);
        int it = Math.max(3, chunks / 2);
        long t0 = System.nanoTime();
        for (int i = 0; i < it; i++) {
          g.forwardDevice(x, tokens, y);
        }
        double s = (System.nanoTime() - t0) / 1e9;
        layerTps = it * (double) tokens / s;
        System.out.printf(Locale.ROOT, "layer forwardDevice (device-resident x, y): %.2f ms/chunk, %,.0f tok/s%n",
            1e3 * s / it, layerTps);
      }
      // (3) pinned H2D of the same bytes
      try (PinnedBuffer p = PinnedBuffer.allocate(bytes); DeviceBuffer d = g.allocate(bytes, "h2d")) {
        p.buffer().asFloatBuffer().put(host);
        d.copyFromAsync(p, 0, 0, bytes, g.stream());
        g.stream().synchronize();
        float ms = g.stream().time(() -> {
          for (int i = 0; i < chunks; i++) {
            d.copyFromAsync(p, 0, 0, bytes, g.stream());
          }
        });
        double gbs = chunks * bytes / (ms * 1e6);
        System.out.printf(Locale.ROOT, "pinned H2D: %.1f GB/s = %,.0f tok/s of fp32 [%d] rows (%.2fx the layer)%n", gbs,
            gbs * 1e9 / (4.0 * h), h, gbs * 1e9 / (4.0 * h) / layerTps);
      }
      // (2) through PinnedStaging, 1 and `threads` host threads
      for (int nt : new int[] {1, threads}) {
        List<PinnedStaging> st = new ArrayList<>();
        for (int t = 0; t < nt; t++) {
          PinnedStaging s = PinnedStaging.create(g, tokens);
          for (int sl = 0; sl < 2; sl++) {
            s.inputBuffer(sl).asFloatBuffer().put(host);
          }
          st.add(s);
        }
        for (PinnedStaging s : st) { // warm-up of every staging (its first copies and events), not only the first
          runStaged(s, 2, new AtomicLong(), new AtomicLong());
        }
        AtomicLong h2d = new AtomicLong();
        AtomicLong comp = new AtomicLong();
        List<Thread> ts = new ArrayList<>();
        long t0 = System.nanoTime();
        for (int t = 0; t < nt; t++) {
          PinnedStaging s = st.get(t);
          int n = chunks / nt;
          Thread th = new Thread(() -> runStaged(s, n, h2d, comp));
          th.start();
          ts.add(th);
        }
        for (Thread th : ts) {
          th.join();
        }
        double s = (System.nanoTime() - t0) / 1e9;
        double tps = (chunks / nt) * nt * (double) tokens / s;
        System.out.printf(Locale.ROOT, "PinnedStaging, %d thread(s): %,.0f tok/s (%.2fx the layer); compute %.0f ms, "
            + "H2D %.0f ms of %.0f ms wall%n", nt, tps, tps / layerTps, comp.get() / 1e6, h2d.get() / 1e6, s * 1e3);
        for (PinnedStaging x : st) {
          x.close();
        }
      }
    }
  }

  /** {@code n} chunks through the two slots: upload(i+1) before compute(i), as the Spark operator does. */
  private static void runStaged(PinnedStaging s, int n, AtomicLong h2d, AtomicLong comp) {
    int rows = s.capacity();
    boolean[] pending = new boolean[2];
    s.upload(0, rows);
    for (int i = 0; i < n; i++) {
      int cur = i % 2;
      int other = 1 - cur;
      if (pending[other]) {
        s.awaitOutput(other);
        pending[other] = false;
      }
      if (i + 1 < n) {
        s.upload(other, rows);
      }
      PinnedStaging.Result res = s.compute(cur);
      pending[cur] = true;
      h2d.addAndGet(res.hostToDeviceNanos());
      comp.addAndGet(res.computeNanos());
    }
    for (int k = 0; k < 2; k++) {
      if (pending[k]) {
        s.awaitOutput(k);
      }
    }
  }
}
