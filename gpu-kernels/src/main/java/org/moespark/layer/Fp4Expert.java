package org.moespark.layer;

import java.nio.ByteBuffer;
import org.moespark.model.WeightTensor;

/**
 * One routed expert's three linear weights as a checkpoint stores them in FP4 ({@link WeightTensor.Format#MXFP4}
 * or {@link WeightTensor.Format#NVFP4}, nn.Linear layout: gate and up {@code [I, H]}, down {@code [H, I]}), kept
 * next to the dequantized {@link ExpertWeights} so that the GPU layer can upload the codes and scales themselves
 * ({@link GemmPrecision#MXFP4} / {@link GemmPrecision#NVFP4}) instead of re-quantizing the dequantized values.
 *
 * <p>{@link #layout} builds the operands of {@link GroupedGemmFp4} for the expert: gate and up rows interleaved
 * per 8 as the SwiGLU epilogue reads them, the intermediate width zero-padded to {@code ip}, and (NVFP4) each
 * tensor's {@code weight_scale_2} as a per-row column scale — gate rows and up rows keep their own.
 */
public record Fp4Expert(WeightTensor gate, WeightTensor up, WeightTensor down) {

  public Fp4Expert {
    if (gate == null || up == null || down == null) {
      throw new IllegalArgumentException("Fp4Expert: gate, up and down must not be null");
    }
    WeightTensor.Format f = gate.format();
    if (f != WeightTensor.Format.MXFP4 && f != WeightTensor.Format.NVFP4) {
      throw new IllegalArgumentException("Fp4Expert: weight '" + gate.name() + "' is " + f + ", not MXFP4 or NVFP4");
    }
    if (up.format() != f || down.format() != f) {
      throw new IllegalArgumentException("Fp4Expert: gate '" + gate.name() + "' is " + f + " but up '" + up.name()
          + "' is " + up.format() + " and down '" + down.name() + "' is " + down.format());
    }
    if (up.rows() != gate.rows() || up.cols() != gate.cols() || down.rows() != gate.cols()
        || down.cols() != gate.rows()) {
      throw new IllegalArgumentException("Fp4Expert: shapes gate [" + gate.rows() + ", " + gate.cols() + "], up ["
          + up.rows() + ", " + up.cols() + "], down [" + down.rows() + ", " + down.cols()
          + "] are not [I, H], [I, H], [H, I]");
    }
  }

  public WeightTensor.Format format() {
    return gate.format();
  }

  public int hidden() {
    return gate.cols();
  }

  public int intermediate() {
    return gate.rows();
  }

  /**
   * The expert's {@link GroupedGemmFp4} operands, {@code ip} ≥ I a multiple of 32: gate/up codes
   * {@code [2·ip, H/2]} and scales {@code [2·ip, H/block]} in {@link GroupedGemmFp4#interleaveGateUpRows}'s row
   * order, down codes {@code [H, ip/2]} and scales {@code [H, ip/block]} (padding zero: weight 0), and for NVFP4
   * the column scales {@code [2·ip]} and {@code [H]} (padding rows 0), else null.
   */
  public Layout layout(int ip) {
    int h = hidden();
    int inter = intermediate();
    if (ip < inter || ip % 32 != 0) {
      throw new IllegalArgumentException("Fp4Expert: ip must be >= " + inter + " and a multiple of 32, got " + ip);
    }
    if (h % 32 != 0) {
      throw new IllegalArgumentException("Fp4Expert: FP4 GEMMs need hidden to be a multiple of 32, got " + h);
    }
    int blk = GroupedGemmFp4.block(format());
    byte[] guCodes = pad(GroupedGemmFp4.interleaveGateUpRows(bytes(gate.data(), inter * h / 2),
        bytes(up.data(), inter * h / 2), inter, h / 2), 2 * ip * (h / 2));
    byte[] guScales = pad(GroupedGemmFp4.interleaveGateUpRows(bytes(gate.scales(), inter * h / blk),
        bytes(up.scales(), inter * h / blk), inter, h / blk), 2 * ip * (h / blk));
    byte[] dCodes = padRows(bytes(down.data(), h * inter / 2), h, inter / 2, ip / 2);
    byte[] dScales = padRows(bytes(down.scales(), h * (inter / blk)), h, inter / blk, ip / blk);
    float[] guCol = null;
    float[] dCol = null;
    if (format() == WeightTensor.Format.NVFP4) {
      // per-row scales in the gate/up row order: the interleaving of a per-row vector, as for the biases
      guCol = java.util.Arrays.copyOf(GroupedGemm.interleaveBias(filled(inter, gate.globalScale()),
          filled(inter, up.globalScale()), inter), 2 * ip);
      dCol = new float[h];
      java.util.Arrays.fill(dCol, down.globalScale());
    }
    return new Layout(guCodes, guScales, guCol, dCodes, dScales, dCol);
  }

  /** One expert's {@link GroupedGemmFp4} operands (see {@link #layout}). */
  public record Layout(byte[] guCodes, byte[] guScales, float[] guCol, byte[] dCodes, byte[] dScales, float[] dCol) {}

  private static float[] filled(int n, float v) {
    float[] a = new float[n];
    java.util.Arrays.fill(a, v);
    return a;
  }

  private static byte[] bytes(ByteBuffer b, int n) {
    byte[] out = new byte[n];
    b.duplicate().get(0, out, 0, n);
    return out;
  }

  /** {@code a} zero-extended to {@code n} bytes (interleaveGateUpRows pads to pad8(I) rows; ip may be more). */
  private static byte[] pad(byte[] a, int n) {
    return a.length == n ? a : java.util.Arrays.copyOf(a, n);
  }

  private static byte[] padRows(byte[] a, int rows, int width, int padded) {
    byte[] out = new byte[rows * padded];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(a, r * width, out, r * padded, width);
    }
    return out;
  }
}
