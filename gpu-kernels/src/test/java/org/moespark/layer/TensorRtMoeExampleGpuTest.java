package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.moespark.cuda.NativeLibrary;
import org.moespark.testing.Tolerance;

/**
 * TensorRT's {@code IMoELayer} documentation example (moe-ops-semantics §11.4) on the GPU through
 * {@link MoeLayerGpu#forwardRouted}: H = I = 32, E = 8, K = 4, every weight, scale, input and score 1,
 * NVFP4 double-quantized weights (dequantized at load, exact in bf16). Every value on the way is exact
 * in bf16 and fp32, so the hand results hold bit for bit: 4 · 32 · 1024 = 131072 without the FP8 mul
 * quantization, 4 · 32 · 448 = 57344 with it (silu(32)·32 = 1024 saturates to 448 in e4m3).
 */
@Tag("gpu")
class TensorRtMoeExampleGpuTest {
  private static final int H = 32;
  private static final int I = 32;
  private static final int E = 8;
  private static final int K = 4;
  private static final int T = 2;

  @BeforeEach
  void gpu() {
    assumeTrue(NativeLibrary.isAvailable(), NativeLibrary.describe());
  }

  private static MoeLayerGpu exampleLayer(Compute compute) {
    List<ExpertWeights> experts = new ArrayList<>();
    for (int e = 0; e < E; e++) {
      float[] ones = new float[I * H];
      Arrays.fill(ones, 1f);
      float[] scales = new float[I * H / 16];
      Arrays.fill(scales, 1f);
      experts.add(ExpertWeights.of(H, I, WeightDequant.nvfp4DoubleQuantized(ones, I, H, scales, 1f),
          WeightDequant.nvfp4DoubleQuantized(ones, I, H, scales, 1f),
          WeightDequant.nvfp4DoubleQuantized(ones, H, I, scales, 1f)));
    }
    MoeBlockSpec spec = new MoeBlockSpec("tensorrt-example", RouterSpec.softmaxTopK(H, E, K, new float[E * H], true,
        false), experts, GatedActivation.SWIGLU, null, null);
    return MoeLayerGpu.create(spec, compute);
  }

  private static float[] filled(int n, float v) {
    float[] a = new float[n];
    Arrays.fill(a, v);
    return a;
  }

  @Test
  void documentationExampleOnTheGpu() {
    for (Compute c : Compute.values()) {
      try (MoeLayerGpu g = exampleLayer(c)) {
        int[] ids = {5, 0, 3, 7, 1, 2, 6, 4};
        float[] y = g.forwardRouted(filled(T * H, 1f), T, ids, filled(T * K, 1f), 1f, null);
        Tolerance.assertBitEqual(y, filled(T * H, 131072f), "no FP8 on the mul output, " + c);
        y = g.forwardRouted(filled(T * H, 1f), T, ids, filled(T * K, 1f), 1f, filled(E, 1f));
        Tolerance.assertBitEqual(y, filled(T * H, 57344f), "FP8 mul output saturates to 448, " + c);
        // a larger mul scale avoids the saturation: 1024 / 4 = 256 is exact in e4m3
        y = g.forwardRouted(filled(T * H, 1f), T, ids, filled(T * K, 1f), Float.NaN, filled(E, 4f));
        Tolerance.assertBitEqual(y, filled(T * H, 131072f), "mul scale 4, " + c);
        // scores weight the slots without renormalisation: 4 slots × 0.5 → 65536
        y = g.forwardRouted(filled(T * H, 1f), T, ids, filled(T * K, 0.5f), Float.NaN, null);
        Tolerance.assertBitEqual(y, filled(T * H, 65536f), "scores 0.5, " + c);
      }
    }
  }

  @Test
  void routingArgumentsAreChecked() {
    try (MoeLayerGpu g = exampleLayer(Compute.FP32)) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> g.forwardRouted(
          filled(T * H, 1f), T, new int[] {3, 3, 1, 2, 0, 1, 2, 4}, filled(T * K, 1f), Float.NaN, null));
      assertTrue(e.getMessage().contains("ids[token 0] lists expert 3 twice (slots 0 and 1)"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> g.forwardRouted(filled(T * H, 1f), T,
          new int[] {0, 1, 2, 3, 0, 1, 2, 8}, filled(T * K, 1f), Float.NaN, null));
      assertTrue(e.getMessage().contains("ids[token 1][slot 3] = 8 is not an expert id in [0, 8)"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> g.forwardRouted(filled(T * H, 1f), T,
          new int[] {0, 1, 2, 3, 0, 1, 2, 4}, filled(T * K, 1f), Float.NaN, filled(E - 1, 1f)));
      assertTrue(e.getMessage().contains("mulScales must be [E=8], got 7"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> g.forwardRouted(filled(T * H, 1f), T,
          new int[] {0, 1, 2, 3, 0, 1, 2, 4}, filled(T * K, 1f), -1f, null));
      assertTrue(e.getMessage().contains("input activation scale must be finite and > 0 (or NaN for none), got -1.0"),
          e.getMessage());
    }
  }
}
