package org.moespark.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.formats.Bf16;

/** What the GPU benchmarks share: wall-clock timing on a stream, bf16 test data, PyTorch baseline files. */
final class BenchSupport {
  private BenchSupport() {}

  /** Mean milliseconds per call of {@code op} over {@code iters} calls, after 3 warm-up calls; syncs {@code s}. */
  static float time(CudaStream s, int iters, Runnable op) {
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

  /** Fills a device buffer of bf16 values with standard normal samples. */
  static void fillRandomBf16(DeviceBuffer b, SplittableRandom rnd) {
    short[] host = new short[(int) (b.size() / 2)];
    for (int i = 0; i < host.length; i++) {
      host[i] = Bf16.encode((float) rnd.nextGaussian());
    }
    b.copyFrom(host);
  }

  /** Lines {@code "name.metric value"} written by the {@code tools/bench/torch_*_baseline.py} scripts. */
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
}
