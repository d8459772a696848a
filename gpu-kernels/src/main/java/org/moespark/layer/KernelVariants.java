package org.moespark.layer;

/**
 * The kernel-variant switches of the grouped GEMMs ({@code moespark.gemm.variant},
 * {@code moespark.gemm.fp8.variant}): parsing and the start-up value from a system property.
 */
final class KernelVariants {
  private KernelVariants() {}

  /**
   * {@code value} as a variant in {@code [1, max]}.
   *
   * @throws IllegalArgumentException naming the property, the allowed values and what was given
   */
  static int parse(String property, String value, int max) {
    StringBuilder allowed = new StringBuilder();
    for (int i = 1; i <= max; i++) {
      allowed.append(i == 1 ? "" : i == max ? " or " : ", ").append(i);
    }
    int x;
    try {
      x = Integer.parseInt(value.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(property + " must be " + allowed + ", got '" + value + "'");
    }
    if (x < 1 || x > max) {
      throw new IllegalArgumentException(property + " must be " + allowed + ", got " + x);
    }
    return x;
  }

  /**
   * The property's variant at class initialization; an invalid value is logged and {@code fallback} used
   * (an exception there would surface as an opaque class-initialization failure).
   */
  static int initial(Class<?> owner, String property, int fallback, int max) {
    String v = System.getProperty(property, Integer.toString(fallback));
    try {
      return parse(property, v, max);
    } catch (IllegalArgumentException e) {
      System.getLogger(owner.getName()).log(System.Logger.Level.WARNING, e.getMessage() + "; using variant "
          + fallback);
      return fallback;
    }
  }
}
