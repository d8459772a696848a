package org.moespark.jobs;

import java.io.PrintStream;
import java.util.Locale;
import org.moespark.bench.LayerBench;
import org.moespark.layer.Backend;

/**
 * {@code moe bench layer --backend cpu [--tokens N]}: benchmarks (not tests). Subcommands: {@code layer}
 * (the CPU MoE layer vs plain sgemm, {@link LayerBench}).
 */
final class BenchCommand implements Main.Command {
  static final String USAGE = "usage: bin/moe bench layer [--backend cpu|gpu|auto] [--tokens N]";

  @Override
  public String summary() {
    return "benchmarks: 'bench layer' (MoE layer tokens/s and GFLOP/s vs plain sgemm)";
  }

  @Override
  public int run(String[] args, PrintStream out) {
    if (args.length == 0) {
      throw new Main.UsageException("missing subcommand (known: layer); " + USAGE);
    }
    if (args[0].equals("--help") || args[0].equals("-h")) {
      out.println(USAGE);
      return 0;
    }
    if (!args[0].equals("layer")) {
      throw new Main.UsageException("unknown bench '" + args[0] + "' (known: layer); " + USAGE);
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
      throw new Main.UsageException("--backend gpu: GPU backend not implemented yet (use cpu or auto)");
    }
    return LayerBench.run(Backend.CPU, tokens, out);
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
