package org.moespark.layer;

import dev.ludovic.netlib.blas.BLAS;

/**
 * One gated expert MLP on the CPU, immutable and thread-safe:
 *
 * <pre>
 *   x' = DQ(Q(x, inputScale))                      optional static FP8 on the input (TensorRT)
 *   g  = x'·gateᵀ + gateBias,   u = x'·upᵀ + upBias   one fused [2I, H] GEMM
 *   a  = activation(g, u)                          {@link GatedActivation}
 *   a' = DQ(Q(a, mulScale))                        optional static FP8 on the mul output (TensorRT)
 *   y  = a'·downᵀ + downBias
 * </pre>
 *
 * Q/DQ is TensorRT's static FP8: {@code e4m3(clamp(rne(v / s), ±448)) · s}, saturating (never NaN for
 * finite overflow). GEMMs go through {@code dev.ludovic.netlib.blas.BLAS.sgemm} with fp32 accumulation.
 * In {@link Compute#BF16} the weights are rounded to bf16 once here and the GEMM outputs, bias sums and
 * every element-wise intermediate are rounded to bf16 (transformers' eager bf16 forward).
 *
 * <p>Rows are independent: a NaN in one input row gives NaN only in that output row.
 */
public final class ExpertFfn {
  /** Rows per GEMM chunk: bounds the scratch to {@code CHUNK × 2I} floats per call. */
  static final int CHUNK = 256;

  private static final BLAS BLAS_INSTANCE = BLAS.getInstance();

  private final int hidden;
  private final int inter;
  private final float[] gateUp; // [2I, H]: rows 0..I-1 gate, I..2I-1 up
  private final float[] down; // [H, I]
  private final float[] gateUpBias; // [2I] or null
  private final float[] downBias; // [H] or null
  private final GatedActivation activation;
  private final float inputScale; // NaN = no input quantization
  private final float mulScale; // NaN = no mul-output quantization
  private final Compute compute;

  private ExpertFfn(ExpertWeights w, GatedActivation activation, float inputScale, float mulScale, Compute compute) {
    this.hidden = w.hidden();
    this.inter = w.intermediate();
    int hi = hidden * inter;
    this.gateUp = new float[2 * hi];
    System.arraycopy(w.gate(), 0, gateUp, 0, hi);
    System.arraycopy(w.up(), 0, gateUp, hi, hi);
    this.down = w.down().clone();
    if (w.gateBias() != null || w.upBias() != null) {
      gateUpBias = new float[2 * inter];
      if (w.gateBias() != null) {
        System.arraycopy(w.gateBias(), 0, gateUpBias, 0, inter);
      }
      if (w.upBias() != null) {
        System.arraycopy(w.upBias(), 0, gateUpBias, inter, inter);
      }
    } else {
      gateUpBias = null;
    }
    this.downBias = w.downBias() == null ? null : w.downBias().clone();
    if (compute == Compute.BF16) {
      LayerNumerics.bf16InPlace(gateUp, 0, gateUp.length);
      LayerNumerics.bf16InPlace(down, 0, down.length);
      if (gateUpBias != null) {
        LayerNumerics.bf16InPlace(gateUpBias, 0, gateUpBias.length);
      }
      if (downBias != null) {
        LayerNumerics.bf16InPlace(downBias, 0, downBias.length);
      }
    }
    this.activation = activation;
    this.inputScale = inputScale;
    this.mulScale = mulScale;
    this.compute = compute;
  }

  /** A plain expert (no FP8 activation quantization). */
  public static ExpertFfn of(ExpertWeights w, GatedActivation activation, Compute compute) {
    return create(w, activation, Float.NaN, Float.NaN, compute);
  }

  /**
   * An expert with TensorRT {@code IMoELayer} static FP8 quantization.
   *
   * @param inputScale the scale of the FP8 Q/DQ in front of the layer, or NaN for none; > 0 and finite
   * @param mulScale {@code fcDownActivationScale} of this expert (the scale of the FP8 Q/DQ of the
   *     gate·up "mul" output before fc_down), or NaN for none; > 0 and finite
   */
  public static ExpertFfn create(ExpertWeights w, GatedActivation activation, float inputScale, float mulScale,
      Compute compute) {
    if (w == null) {
      throw new IllegalArgumentException("expert weights must not be null");
    }
    if (activation == null) {
      throw new IllegalArgumentException("activation must not be null");
    }
    if (compute == null) {
      throw new IllegalArgumentException("compute must not be null");
    }
    checkScale("input activation scale", inputScale);
    checkScale("fcDownActivationScale", mulScale);
    return new ExpertFfn(w, activation, inputScale, mulScale, compute);
  }

  private static void checkScale(String what, float s) {
    if (!Float.isNaN(s) && !(s > 0 && Float.isFinite(s))) {
      throw new IllegalArgumentException(what + " must be finite and > 0 (or NaN for none), got " + s);
    }
  }

  public int hidden() {
    return hidden;
  }

  public int intermediate() {
    return inter;
  }

  /** Floating-point operations per row: 2·3·H·I (gate, up and down GEMMs; element-wise work not counted). */
  public long flopsPerRow() {
    return 6L * hidden * inter;
  }

  /** Convenience: {@code y[rows, H]} for {@code x[rows, H]}. */
  public float[] forward(float[] x, int rows) {
    if (x == null) {
      throw new IllegalArgumentException("x must not be null");
    }
    if (rows < 0) {
      throw new IllegalArgumentException("rows must be >= 0, got " + rows);
    }
    if (x.length != (long) rows * hidden) {
      throw new IllegalArgumentException("x must be [" + rows + ", " + hidden + "] = " + (long) rows * hidden
          + " floats, got " + x.length);
    }
    float[] y = new float[x.length];
    forward(x, 0, rows, y, 0);
    return y;
  }

  /**
   * Runs the expert on {@code rows} contiguous rows {@code x[xOff .. xOff + rows·H)} into
   * {@code y[yOff .. yOff + rows·H)} (overwritten). {@code x} is not modified.
   */
  public void forward(float[] x, int xOff, int rows, float[] y, int yOff) {
    if (rows < 0) {
      throw new IllegalArgumentException("rows must be >= 0, got " + rows);
    }
    long need = (long) rows * hidden;
    if (xOff < 0 || xOff + need > x.length) {
      throw new IllegalArgumentException("x holds " + x.length + " floats, need " + need + " from offset " + xOff);
    }
    if (yOff < 0 || yOff + need > y.length) {
      throw new IllegalArgumentException("y holds " + y.length + " floats, need " + need + " from offset " + yOff);
    }
    if (rows == 0) {
      return;
    }
    int chunk = Math.min(rows, CHUNK);
    float[] h = new float[chunk * 2 * inter];
    float[] a = new float[chunk * inter];
    float[] xq = Float.isNaN(inputScale) ? null : new float[chunk * hidden];
    boolean bf16 = compute == Compute.BF16;
    for (int r0 = 0; r0 < rows; r0 += chunk) {
      int n = Math.min(chunk, rows - r0);
      float[] src = x;
      int srcOff = xOff + r0 * hidden;
      if (xq != null) {
        for (int i = 0; i < n * hidden; i++) {
          xq[i] = LayerNumerics.fp8QuantDequant(x[srcOff + i], inputScale);
        }
        src = xq;
        srcOff = 0;
      }
      // h[n, 2I] = src[n, H] · gateUp[2I, H]ᵀ
      linear(src, srcOff, n, hidden, gateUp, 2 * inter, h);
      for (int r = 0; r < n; r++) {
        int hb = r * 2 * inter;
        int ab = r * inter;
        if (gateUpBias != null) {
          for (int c = 0; c < 2 * inter; c++) {
            float v = h[hb + c];
            if (bf16) {
              v = LayerNumerics.bf16(v);
            }
            v += gateUpBias[c];
            h[hb + c] = v;
          }
        }
        if (bf16) {
          for (int c = 0; c < inter; c++) {
            a[ab + c] = activation.applyBf16(LayerNumerics.bf16(h[hb + c]), LayerNumerics.bf16(h[hb + inter + c]));
          }
        } else {
          for (int c = 0; c < inter; c++) {
            a[ab + c] = activation.apply(h[hb + c], h[hb + inter + c]);
          }
        }
        if (!Float.isNaN(mulScale)) {
          for (int c = 0; c < inter; c++) {
            a[ab + c] = LayerNumerics.fp8QuantDequant(a[ab + c], mulScale);
          }
        }
      }
      int yb = yOff + r0 * hidden;
      linearInto(a, 0, n, inter, down, hidden, y, yb);
      if (downBias != null || bf16) {
        for (int r = 0; r < n; r++) {
          int b = yb + r * hidden;
          for (int c = 0; c < hidden; c++) {
            float v = y[b + c];
            if (bf16) {
              v = LayerNumerics.bf16(v);
            }
            if (downBias != null) {
              v += downBias[c];
              if (bf16) {
                v = LayerNumerics.bf16(v);
              }
            }
            y[b + c] = v;
          }
        }
      }
    }
  }

  private static void linear(float[] a, int aOff, int m, int k, float[] w, int n, float[] c) {
    linearInto(a, aOff, m, k, w, n, c, 0);
  }

  /**
   * Row-major {@code c[m, n] = a[m, k] · w[n, k]ᵀ} (w in nn.Linear layout) through column-major sgemm:
   * {@code cᵀ(n×m) = w(n×k)·aᵀ(k×m)}, i.e. {@code sgemm("T", "N", n, m, k, w, lda=k, a, ldb=k, c, ldc=n)}.
   */
  static void linearInto(float[] a, int aOff, int m, int k, float[] w, int n, float[] c, int cOff) {
    if (m == 0) {
      return;
    }
    BLAS_INSTANCE.sgemm("T", "N", n, m, k, 1f, w, 0, k, a, aOff, k, 0f, c, cOff, n);
  }

  /** The BLAS implementation in use (e.g. {@code VectorBLAS}, {@code JNIBLAS}, {@code F2jBLAS}). */
  public static String blasName() {
    return BLAS_INSTANCE.getClass().getSimpleName();
  }

  static BLAS blas() {
    return BLAS_INSTANCE;
  }
}
