package org.moespark.jobs;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The command-line options of one subcommand: {@code --name value} pairs and bare {@code --flag}s,
 * plus positional words. Every malformed or unknown option is a {@link Main.UsageException} that
 * names it. Values are read with the typed getters, which check ranges and name the option.
 */
final class Args {
  private final String command;
  private final Map<String, String> values = new LinkedHashMap<>();
  private final List<String> positional = new ArrayList<>();

  /**
   * Parses {@code args}. {@code valued} are the option names (without {@code --}) that take a value;
   * {@code flags} those that do not; anything else starting with {@code --} is rejected.
   */
  Args(String command, String[] args, Set<String> valued, Set<String> flags) {
    this.command = command;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) {
        positional.add(a);
        continue;
      }
      String name = a.substring(2);
      String inline = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        inline = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      if (flags.contains(name)) {
        if (inline != null) {
          throw new Main.UsageException("option --" + name + " takes no value, got '" + inline + "'");
        }
        put(name, "true");
      } else if (valued.contains(name)) {
        String v = inline;
        if (v == null) {
          if (i + 1 >= args.length) {
            throw new Main.UsageException("option --" + name + " needs a value");
          }
          v = args[++i];
        }
        put(name, v);
      } else {
        List<String> known = new ArrayList<>();
        valued.forEach(k -> known.add("--" + k));
        flags.forEach(k -> known.add("--" + k));
        throw new Main.UsageException("unknown option --" + name + " for '" + command + "' (known: "
            + String.join(" ", known) + ")");
      }
    }
  }

  private void put(String name, String v) {
    if (values.put(name, v) != null) {
      throw new Main.UsageException("option --" + name + " given twice");
    }
  }

  List<String> positional() {
    return positional;
  }

  boolean has(String name) {
    return values.containsKey(name);
  }

  boolean flag(String name) {
    return values.containsKey(name);
  }

  String string(String name, String def) {
    return values.getOrDefault(name, def);
  }

  String required(String name) {
    String v = values.get(name);
    if (v == null) {
      throw new Main.UsageException("missing required option --" + name);
    }
    return v;
  }

  /** A value that must be one of {@code allowed}. */
  String choice(String name, String def, String... allowed) {
    String v = string(name, def);
    for (String a : allowed) {
      if (a.equals(v)) {
        return v;
      }
    }
    throw new Main.UsageException("option --" + name + ": expected one of " + String.join("|", allowed) + ", got '" + v + "'");
  }

  long longValue(String name, long def, long min, long max) {
    String v = values.get(name);
    if (v == null) {
      return def;
    }
    long x;
    try {
      x = Long.parseLong(v.replace("_", ""));
    } catch (NumberFormatException e) {
      throw new Main.UsageException("option --" + name + ": expected an integer, got '" + v + "'");
    }
    if (x < min || x > max) {
      throw new Main.UsageException("option --" + name + ": expected " + min + " <= value <= " + max + ", got " + x);
    }
    return x;
  }

  double doubleValue(String name, double def, double min, double max) {
    String v = values.get(name);
    if (v == null) {
      return def;
    }
    double x;
    try {
      x = Double.parseDouble(v);
    } catch (NumberFormatException e) {
      throw new Main.UsageException("option --" + name + ": expected a number, got '" + v + "'");
    }
    if (!(x >= min && x <= max)) {
      throw new Main.UsageException("option --" + name + ": expected " + min + " <= value <= " + max + ", got " + v);
    }
    return x;
  }

  int intValue(String name, int def, int min, int max) {
    return (int) longValue(name, def, min, max);
  }

  int requiredInt(String name, int min, int max) {
    required(name);
    return intValue(name, 0, min, max);
  }

  long requiredLong(String name, long min, long max) {
    required(name);
    return longValue(name, 0, min, max);
  }

  String command() {
    return command;
  }
}
