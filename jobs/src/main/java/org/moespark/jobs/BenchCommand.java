package org.moespark.jobs;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.moespark.bench.LayerBench;
import org.moespark.bench.OpsBench;
import org.moespark.layer.Backend;

/**
 * {@code moe bench layer|ops ...}: benchmarks (not tests). Subcommands: {@code layer} (the CPU MoE layer
 * vs plain sgemm, {@link LayerBench}) and {@code ops} (GPU operator bandwidth and routing time vs a
 * same-process device copy and optional PyTorch baselines, {@link OpsBench}; exit code 1 with the
 * reason when there is no usable GPU).
 */
final class BenchCommand implements Main.Command {
  static final String USAGE = "usage: bin/moe bench layer [--backend cpu|gpu|auto] [--tokens N]\n"
      + "       bin/moe bench ops [--backend gpu] [--tokens N] [--iters N] [--torch FILE]";

  @Override
  public String summary() {
    return "benchmarks: 'bench layer' (MoE layer tokens/s and GFLOP/s vs plain sgemm), "
        + "'bench ops' (GPU routing/permute/quant GB/s vs a device copy and PyTorch)";
  }

  @Override
  public int run(String[] args, PrintStream out) {
    if (args.length == 0) {
      throw new Main.UsageException("missing subcommand (known: layer, ops); " + USAGE);
    }
    if (args[0].equals("--help") || args[0].equals("-h")) {
      out.println(USAGE);
      return 0;
    }
    if (args[0].equals("ops")) {
      return runOps(args, out);
    }
    if (!args[0].equals("layer")) {
      throw new Main.UsageException("unknown bench '" + args[0] + "' (known: layer, ops); " + USAGE);
    }
    Backend backend = Backend.AUTO;
    int tokens = 0;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--help", "-h" -> {
          out.println(USAGE);
          return 0;
        }
        case "--backend" -> backend = LayerCommand.parseBackend(Args.value(args, i++, a, USAGE));
        case "--tokens" -> {
          tokens = Args.positiveInt(Args.value(args, i++, a, USAGE), a);
        }
        default -> throw new Main.UsageException("unknown option '" + a + "'; " + USAGE);
      }
    }
    if (backend == Backend.GPU) {
      return LayerBench.run(Backend.GPU, tokens, out); // prints why and returns 1 where no GPU is usable
    }
    return LayerBench.run(Backend.CPU, tokens, out);
  }

  /** {@code bench ops}: GPU only; {@code --tokens} (default 16384), {@code --iters} (20), {@code --torch FILE}. */
  private static int runOps(String[] args, PrintStream out) {
    int tokens = 16384;
    int iters = 20;
    Path torch = null;
    for (int i = 1; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--help", "-h" -> {
          out.println(USAGE);
          return 0;
        }
        case "--backend" -> {
          String b = Args.lower(Args.value(args, i++, a, USAGE));
          if (!b.equals("gpu")) {
            throw new Main.UsageException("bench ops measures the CUDA kernels: --backend must be gpu, got '" + b
                + "'; " + USAGE);
          }
        }
        case "--tokens" -> tokens = Args.positiveInt(Args.value(args, i++, a, USAGE), a);
        case "--iters" -> iters = Args.positiveInt(Args.value(args, i++, a, USAGE), a);
        case "--torch" -> {
          torch = Path.of(Args.value(args, i++, a, USAGE));
          if (!Files.isRegularFile(torch)) {
            throw new Main.UsageException("--torch: no such file '" + torch + "' (write it with "
                + "tools/bench/torch_ops_baseline.py)");
          }
        }
        default -> throw new Main.UsageException("unknown option '" + a + "'; " + USAGE);
      }
    }
    try {
      return OpsBench.run(tokens, iters, torch, out);
    } catch (IOException e) {
      throw new UncheckedIOException("bench ops: cannot read the PyTorch baseline " + torch, e);
    }
  }

  /** Small shared argument helpers for the jobs commands. */
  static final class Args {
    private Args() {}

    static String value(String[] args, int i, String flag, String usage) {
      if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
        throw new Main.UsageException(flag + " needs a value; " + usage);
      }
      return args[i + 1];
    }

    static int positiveInt(String v, String flag) {
      try {
        int n = Integer.parseInt(v);
        if (n <= 0) {
          throw new Main.UsageException(flag + " must be a positive integer, got " + v);
        }
        return n;
      } catch (NumberFormatException e) {
        throw new Main.UsageException(flag + " must be a positive integer, got '" + v + "'");
      }
    }

    static int nonNegativeInt(String v, String flag) {
      try {
        int n = Integer.parseInt(v);
        if (n < 0) {
          throw new Main.UsageException(flag + " must be >= 0, got " + v);
        }
        return n;
      } catch (NumberFormatException e) {
        throw new Main.UsageException(flag + " must be an integer >= 0, got '" + v + "'");
      }
    }

    static String lower(String v) {
      return v.toLowerCase(Locale.ROOT);
    }
  }
}
