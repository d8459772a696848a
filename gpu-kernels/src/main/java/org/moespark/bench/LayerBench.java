package org.moespark.bench;

import java.io.PrintStream;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.moespark.layer.Backend;
import org.moespark.layer.ExpertFfn;
import org.moespark.layer.ExpertWeights;
import org.moespark.layer.Compute;
import org.moespark.layer.GatedActivation;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeBlockSpec;
import org.moespark.layer.MoeLayer;
import org.moespark.layer.RouterSpec;

/**
 * CPU benchmark of the MoE layer (router → permute → expert SwiGLU GEMMs → weighted unpermute) on
 * random OLMoE-like and Mixtral-like layers: tokens/s and achieved GFLOP/s (counting the three expert
 * GEMMs and the router GEMM: {@code 2·T·(E·H + 3·K·H·I)}), next to the plain netlib {@code sgemm} rate
 * of the same BLAS instance on the layer's per-expert gate/up GEMM shape, measured in the same run,
 * and their ratio (the ceiling the layer can reach on this machine).
 *
 * <p>Memory: to keep the heap small, the layers use {@code distinct} different expert weight sets,
 * expert {@code e} running weight set {@code e % distinct} (FLOPs and routing are unchanged; each
 * expert's weights are far larger than the caches, so the streaming behaviour is that of distinct
 * experts). Validates token 0 against a naive double-precision loop before timing.
 */
public final class LayerBench {
  /** A benchmark shape; {@code tokens} is the default token count (sized for ~1 minute in all). */
  public record Shape(String name, int hidden, int experts, int topK, int inter, int tokens, int distinct) {}

  public static final List<Shape> SHAPES = List.of(
      new Shape("olmoe-like", 2048, 64, 8, 1024, 256, 8),
      new Shape("mixtral-like", 4096, 8, 2, 14336, 32, 1));

  private LayerBench() {}

  public static void main(String[] args) {
    int tokens = 0;
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--tokens") && i + 1 < args.length) {
        tokens = Integer.parseInt(args[++i]);
      } else {
        throw new IllegalArgumentException("usage: LayerBench [--tokens N], got " + args[i]);
      }
    }
    System.exit(run(Backend.CPU, tokens, System.out));
  }

  /**
   * Runs every shape.
   *
   * @param tokens tokens per forward (0 = each shape's default)
   * @return 0, or 1 when validation failed
   */
  public static int run(Backend backend, int tokens, PrintStream out) {
    if (tokens < 0) {
      throw new IllegalArgumentException("tokens must be >= 0 (0 = default), got " + tokens);
    }
    if (backend == Backend.GPU) {
      throw new UnsupportedOperationException("bench layer: GPU backend not implemented yet; use --backend cpu");
    }
    out.printf("bench layer: backend cpu, BLAS %s, %d cores, java %s, %s%n", ExpertFfn.blasName(),
        Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), LocalDate.now());
    out.printf("%-13s %5s %4s %2s %6s %6s %9s %10s %9s   %-22s %9s %6s%n", "shape", "H", "E", "K", "I", "tokens",
        "ms/iter", "tokens/s", "GFLOP/s", "sgemm M×N×K", "GFLOP/s", "ratio");
    int rc = 0;
    for (Shape s : SHAPES) {
      rc |= runShape(s, tokens == 0 ? s.tokens() : tokens, out);
    }
    return rc;
  }

  static int runShape(Shape s, int tokens, PrintStream out) {
    SplittableRandom rnd = new SplittableRandom(42);
    int h = s.hidden();
    int inter = s.inter();
    List<ExpertWeights> sets = new ArrayList<>();
    for (int d = 0; d < s.distinct(); d++) {
      float a = (float) (1 / Math.sqrt(h));
      float b = (float) (1 / Math.sqrt(inter));
      sets.add(ExpertWeights.of(h, inter, uniform(rnd, inter * h, a), uniform(rnd, inter * h, a),
          uniform(rnd, h * inter, b)));
    }
    List<ExpertWeights> experts = new ArrayList<>();
    for (int e = 0; e < s.experts(); e++) {
      experts.add(sets.get(e % s.distinct()));
    }
    float[] router = uniform(rnd, s.experts() * h, (float) (1 / Math.sqrt(h)));
    MoeBlockSpec spec = new MoeBlockSpec(s.name(), RouterSpec.softmaxTopK(h, s.experts(), s.topK(), router, true, false),
        experts, GatedActivation.SWIGLU, null, null);
    MoeLayer layer = MoeLayer.create(spec, new LayerOptions(Backend.CPU, Compute.FP32));
    sets = null;
    experts = null;
    float[] x = uniform(rnd, tokens * h, 1f);

    MoeLayer.Output first = layer.forward(x, tokens);
    double err = validateToken0(spec, x, first);
    if (!(err <= 1e-4)) {
      out.printf("%-13s validation FAILED: token 0 relative error %.3e vs the naive reference%n", s.name(), err);
      return 1;
    }
    long flops = 2L * tokens * ((long) s.experts() * h + 3L * s.topK() * h * inter);
    double sec = time(() -> layer.forward(x, tokens), false); // the validated call above was the warm-up

    // the plain sgemm baseline: the average per-expert gate/up GEMM of this layer, same BLAS instance
    int m = Math.max(1, tokens * s.topK() / s.experts());
    int n = 2 * inter;
    int k = h;
    float[] w = uniform(rnd, n * k, 0.01f);
    float[] xa = uniform(rnd, m * k, 1f);
    float[] c = new float[m * n];
    double gsec = time(() -> ExpertMixtureBaseline.sgemm(xa, m, k, w, n, c), true);
    double gflops = 2.0 * m * n * k / gsec / 1e9;
    double lflops = flops / sec / 1e9;
    out.printf("%-13s %5d %4d %2d %6d %6d %9.1f %10.1f %9.2f   %-22s %9.2f %6.2f%n", s.name(), h, s.experts(), s.topK(),
        inter, tokens, sec * 1e3, tokens / sec, lflops, m + "×" + n + "×" + k, gflops, lflops / gflops);
    return 0;
  }

  /** Mean seconds per run over at least 2 runs and 1 s, after an optional warm-up run. */
  private static double time(Runnable r, boolean warmUp) {
    if (warmUp) {
      r.run();
    }
    int runs = 0;
    long t0 = System.nanoTime();
    long elapsed;
    do {
      r.run();
      runs++;
      elapsed = System.nanoTime() - t0;
    } while (runs < 2 || elapsed < 1_000_000_000L);
    return elapsed / 1e9 / runs;
  }

  private static float[] uniform(SplittableRandom r, int n, float a) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = (float) ((r.nextDouble() * 2 - 1) * a);
    }
    return v;
  }

  /** Token 0 through plain double loops (softmax → top-k → renorm → SwiGLU experts) vs the layer. */
  private static double validateToken0(MoeBlockSpec s, float[] x, MoeLayer.Output o) {
    int h = s.router().hidden();
    int numE = s.router().experts();
    double[] logits = new double[numE];
    double max = Double.NEGATIVE_INFINITY;
    for (int e = 0; e < numE; e++) {
      double d = 0;
      for (int c = 0; c < h; c++) {
        d += (double) s.router().weight()[e * h + c] * x[c];
      }
      logits[e] = d;
      max = Math.max(max, d);
    }
    int k = s.router().topK();
    boolean[] used = new boolean[numE];
    int[] ids = new int[k];
    double sum = 0;
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int e = 0; e < numE; e++) {
        if (!used[e] && (best < 0 || logits[e] > logits[best])) {
          best = e;
        }
      }
      used[best] = true;
      ids[j] = best;
      sum += Math.exp(logits[best] - max);
    }
    double[] y = new double[h];
    for (int j = 0; j < k; j++) {
      if (ids[j] != o.topkIds()[j]) {
        return Double.POSITIVE_INFINITY;
      }
      double w = Math.exp(logits[ids[j]] - max) / sum;
      ExpertWeights ew = s.experts().get(ids[j]);
      int inter = ew.intermediate();
      double[] a = new double[inter];
      for (int i = 0; i < inter; i++) {
        double g = 0;
        double u = 0;
        for (int c = 0; c < h; c++) {
          g += (double) ew.gate()[i * h + c] * x[c];
          u += (double) ew.up()[i * h + c] * x[c];
        }
        a[i] = g / (1 + Math.exp(-g)) * u;
      }
      for (int c = 0; c < h; c++) {
        double d = 0;
        for (int i = 0; i < inter; i++) {
          d += (double) ew.down()[c * inter + i] * a[i];
        }
        y[c] += w * d;
      }
    }
    double num = 0;
    double den = 0;
    for (int c = 0; c < h; c++) {
      double d = o.y()[c] - y[c];
      num += d * d;
      den += y[c] * y[c];
    }
    return Math.sqrt(num / Math.max(den, 1e-30));
  }

  /** The baseline GEMM, in the layer's own layout (row-major x · wᵀ). */
  static final class ExpertMixtureBaseline {
    private static final dev.ludovic.netlib.blas.BLAS BLAS = dev.ludovic.netlib.blas.BLAS.getInstance();

    static void sgemm(float[] x, int m, int k, float[] w, int n, float[] c) {
      BLAS.sgemm("T", "N", n, m, k, 1f, w, 0, k, x, 0, k, 0f, c, 0, n);
    }
  }
}
