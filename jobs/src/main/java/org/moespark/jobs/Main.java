package org.moespark.jobs;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Entry point of {@code bin/moe} and of {@code spark-submit --class org.moespark.jobs.Main}: the
 * first argument names a subcommand. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
public final class Main {
  /** A subcommand of the command line. */
  public interface Command {
    /** One line for {@code --help}. */
    String summary();

    /** Runs with the arguments after the subcommand name; returns the exit code. */
    int run(String[] args, PrintStream out) throws Exception;
  }

  /** Thrown for bad command-line usage: printed without a stack trace, exit code 2. */
  public static final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public UsageException(String message) {
      super(message);
    }
  }

  static final Map<String, Command> COMMANDS = new LinkedHashMap<>();

  static {
    COMMANDS.put("version", new VersionCommand());
    COMMANDS.put("gen", new GenCommand());
    COMMANDS.put("score", new ScoreCommand());
    COMMANDS.put("stats", new StatsCommand());
    COMMANDS.put("demo", new DemoCommand());
    COMMANDS.put("layer", new LayerCommand());
    COMMANDS.put("bench", new BenchCommand());
  }

  private Main() {}

  public static void main(String[] args) {
    System.exit(run(args, System.out, System.err));
  }

  /** Runs a command line; used by main and by tests. */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
      usage(out);
      return args.length == 0 ? 2 : 0;
    }
    Command c = COMMANDS.get(args[0]);
    if (c == null) {
      err.println("moe: unknown command '" + args[0] + "' (known: " + String.join(", ", COMMANDS.keySet()) + ")");
      return 2;
    }
    try {
      return c.run(Arrays.copyOfRange(args, 1, args.length), out);
    } catch (UsageException e) {
      err.println("moe " + args[0] + ": " + e.getMessage());
      return 2;
    } catch (Exception e) {
      err.println("moe " + args[0] + " failed: " + e);
      for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
        err.println("  caused by: " + t);
      }
      return 1;
    }
  }

  static void usage(PrintStream out) {
    out.println("moe — Mixture-of-Experts layers over Spark datasets (CUDA through JNI, exact Java CPU backend)");
    out.println();
    out.println("usage: bin/moe <command> [options]      (each command takes --help)");
    out.println("   or: spark-submit --class org.moespark.jobs.Main <jobs jar> <command> [options]");
    out.println();
    out.println("commands:");
    for (Map.Entry<String, Command> e : COMMANDS.entrySet()) {
      out.printf("  %-10s %s%n", e.getKey(), e.getValue().summary());
    }
  }
}
