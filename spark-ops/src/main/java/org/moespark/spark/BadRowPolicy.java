package org.moespark.spark;

import java.util.Locale;

/** Value of {@value MoeConf#BAD_ROWS}: what happens to a null, wrong-width, or NaN/Inf input row. */
public enum BadRowPolicy {
  /** Fail the task, naming the row (partition, position in it) and what is wrong with it. */
  ERROR,
  /** Drop the row from the output; counted in the metrics and logged. */
  SKIP,
  /** Keep the row with a null result; counted in the metrics and logged. */
  NULL;

  public static BadRowPolicy parse(String s, String where) {
    if (s == null) {
      throw new IllegalArgumentException(where + ": badRows must be one of error|skip|null, got null");
    }
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where + ": badRows must be one of error|skip|null, got '" + s + "'", e);
    }
  }
}
