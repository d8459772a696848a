package org.moespark.spark;

import java.util.Locale;

/** Value of {@value MoeConf#BACKEND}. */
public enum MoeBackend {
  /** GPU when the CUDA library and a device are usable, else the CPU (the reason is logged once). */
  AUTO,
  /** Always the exact Java backend. */
  CPU,
  /** Always the GPU; fails clearly when none is usable. */
  GPU;

  /** Parses {@code auto|cpu|gpu} (any case). */
  public static MoeBackend parse(String s, String where) {
    if (s == null) {
      throw new IllegalArgumentException(where + ": backend must be one of auto|cpu|gpu, got null");
    }
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(where + ": backend must be one of auto|cpu|gpu, got '" + s + "'", e);
    }
  }
}
