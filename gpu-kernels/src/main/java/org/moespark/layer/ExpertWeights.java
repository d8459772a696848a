package org.moespark.layer;

/**
 * One gated expert's weights, dequantized to fp32, in {@code nn.Linear} layout ({@code [out, in]},
 * row-major): {@code y = down · act(gate·x + gateBias, up·x + upBias) + downBias}.
 *
 * <p>The arrays are owned by the record's creator; {@link ExpertFfn} copies what it keeps.
 *
 * @param hidden H, the model width
 * @param intermediate I, the expert width
 * @param gate {@code [I, H]}
 * @param up {@code [I, H]}
 * @param down {@code [H, I]}
 * @param gateBias {@code [I]} or null
 * @param upBias {@code [I]} or null
 * @param downBias {@code [H]} or null
 */
public record ExpertWeights(
    int hidden, int intermediate, float[] gate, float[] up, float[] down, float[] gateBias, float[] upBias, float[] downBias) {

  public ExpertWeights {
    if (hidden <= 0) {
      throw new IllegalArgumentException("expert hidden size must be > 0, got " + hidden);
    }
    if (intermediate <= 0) {
      throw new IllegalArgumentException("expert intermediate size must be > 0, got " + intermediate);
    }
    long n = (long) hidden * intermediate;
    if (n > Integer.MAX_VALUE - 16) {
      throw new IllegalArgumentException("expert weight [" + intermediate + ", " + hidden + "] has " + n
          + " elements, more than a Java array holds");
    }
    check("gate", gate, n, "[" + intermediate + ", " + hidden + "]");
    check("up", up, n, "[" + intermediate + ", " + hidden + "]");
    check("down", down, n, "[" + hidden + ", " + intermediate + "]");
    checkBias("gateBias", gateBias, intermediate);
    checkBias("upBias", upBias, intermediate);
    checkBias("downBias", downBias, hidden);
  }

  /** Weights without biases. */
  public static ExpertWeights of(int hidden, int intermediate, float[] gate, float[] up, float[] down) {
    return new ExpertWeights(hidden, intermediate, gate, up, down, null, null, null);
  }

  public boolean hasBiases() {
    return gateBias != null || upBias != null || downBias != null;
  }

  private static void check(String name, float[] a, long n, String shape) {
    if (a == null) {
      throw new IllegalArgumentException("expert weight " + name + " " + shape + " must not be null");
    }
    if (a.length != n) {
      throw new IllegalArgumentException("expert weight " + name + " must be " + shape + " = " + n
          + " floats, got " + a.length);
    }
  }

  private static void checkBias(String name, float[] a, int n) {
    if (a != null && a.length != n) {
      throw new IllegalArgumentException("expert " + name + " must have " + n + " floats, got " + a.length);
    }
  }
}
