package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.testing.Tolerance;

/**
 * TensorRT {@code IMoELayer} semantics (moe-ops-semantics §11): the documentation example (B=1, S=2,
 * H=I=32, E=8, K=4, every weight/scale/input/score 1, NVFP4 double-quantized weights, static FP8 on
 * the input and on the mul output) must give exactly 57344.0 everywhere, and its counterparts.
 */
class TensorRtMoeExampleTest {
  private static final int H = 32;
  private static final int I = 32;
  private static final int E = 8;
  private static final int K = 4;
  private static final int T = 2;

  /** The example's experts: weights built as [E, I, H] / [E, H, I] ones, NVFP4 double quantized with scales 1. */
  private static ExpertMixture exampleExperts(float inputScale, float mulScale, float weight) {
    List<ExpertFfn> ffns = new ArrayList<>();
    for (int e = 0; e < E; e++) {
      float[] ones = new float[I * H];
      Arrays.fill(ones, weight);
      float[] scales = new float[I * H / 16];
      Arrays.fill(scales, 1f);
      float[] gate = WeightDequant.nvfp4DoubleQuantized(ones, I, H, scales, 1f);
      float[] up = WeightDequant.nvfp4DoubleQuantized(ones, I, H, scales, 1f);
      float[] down = WeightDequant.nvfp4DoubleQuantized(ones, H, I, scales, 1f);
      ffns.add(ExpertFfn.create(ExpertWeights.of(H, I, gate, up, down), GatedActivation.SWIGLU, inputScale, mulScale,
          Compute.FP32));
    }
    return new ExpertMixture(ffns, Compute.FP32);
  }

  private static int[] randomExperts(long seed) {
    Random r = new Random(seed);
    int[] ids = new int[T * K];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = r.nextInt(E); // np.random.randint: duplicates allowed
    }
    return ids;
  }

  private static float[] filled(int n, float v) {
    float[] a = new float[n];
    Arrays.fill(a, v);
    return a;
  }

  @Test
  void documentationExampleGives57344Exactly() {
    ExpertMixture m = exampleExperts(1f, 1f, 1f);
    for (long seed = 0; seed < 5; seed++) {
      int[] ids = randomExperts(seed);
      float[] y = m.forward(filled(T * H, 1f), T, K, ids, filled(T * K, 1f));
      // g = u = 32, silu(32)·32 = 1024 saturates to 448 in FP8, 32·448 = 14336 per slot, 4 slots = 57344
      Tolerance.assertBitEqual(y, filled(T * H, 57344.0f), "TensorRT IMoELayer example, experts " + Arrays.toString(ids));
    }
  }

  @Test
  void duplicateExpertsInARowAreEachComputed() {
    float[] y = exampleExperts(1f, 1f, 1f).forward(filled(T * H, 1f), T, K, new int[] {3, 3, 3, 3, 0, 7, 0, 7},
        filled(T * K, 1f));
    Tolerance.assertBitEqual(y, filled(T * H, 57344.0f), "duplicate experts");
  }

  @Test
  void withoutTheMulQuantizationTheResultIs131072() {
    // the same example without setQuantizationStatic: 4 · 32 · 1024
    float[] y = exampleExperts(1f, Float.NaN, 1f).forward(filled(T * H, 1f), T, K, randomExperts(7),
        filled(T * K, 1f));
    Tolerance.assertBitEqual(y, filled(T * H, 131072.0f), "no FP8 on the mul output");
  }

  @Test
  void aLargerMulScaleAvoidsSaturation() {
    // scale 4: 1024 / 4 = 256 is an e4m3 value, DQ gives 1024 back → 4 · 32 · 1024 = 131072
    float[] y = exampleExperts(1f, 4f, 1f).forward(filled(T * H, 1f), T, K, randomExperts(8), filled(T * K, 1f));
    Tolerance.assertBitEqual(y, filled(T * H, 131072.0f), "mul scale 4");
  }

  @Test
  void unsaturatedMulOutputRoundsToNearestEven() {
    // hidden = 0.625 (an e4m3 value): g = u = 32 · 0.625 = 20, silu(20) = 20 in fp32 (e^-20 < 2^-25),
    // mul = 400 < 448 lies halfway between the e4m3 values 384 and 416 → RNE → 384 (even mantissa).
    // y = 4 slots · 32 · 384 = 49152.
    float[] y = exampleExperts(1f, 1f, 1f).forward(filled(T * H, 0.625f), T, K, randomExperts(9), filled(T * K, 1f));
    Tolerance.assertBitEqual(y, filled(T * H, 49152.0f), "mul 400 → 384");
  }

  @Test
  void scoresWeightTheSlotsWithoutRenormalisation() {
    // scores 0.5, 0.25, 2, 0 → (0.5 + 0.25 + 2 + 0) · 14336 = 39424
    float[] scores = {0.5f, 0.25f, 2f, 0f, 1f, 1f, 1f, 1f};
    float[] y = exampleExperts(1f, 1f, 1f).forward(filled(T * H, 1f), T, K, randomExperts(10), scores);
    float[] expected = new float[T * H];
    Arrays.fill(expected, 0, H, 39424f);
    Arrays.fill(expected, H, 2 * H, 57344f);
    Tolerance.assertBitEqual(y, expected, "scores");
  }

  @Test
  void inputQuantizationSaturatesToo() {
    // hidden = 1000 quantized with scale 1 → 448; g = u = 32 · 448 = 14336 → mul saturates to 448 again
    float[] y = exampleExperts(1f, 1f, 1f).forward(filled(T * H, 1000f), T, K, randomExperts(11), filled(T * K, 1f));
    Tolerance.assertBitEqual(y, filled(T * H, 57344.0f), "input saturation");
    // hidden = 1.0625 (a tie between the e4m3 values 1 and 1.125) → the input Q/DQ gives 1 → same 57344;
    // without the input Q/DQ: g = u = 34, mul 1156 → 448 as well, so use the no-mul-quant variant to see it:
    float[] noMulQ = exampleExperts(1f, Float.NaN, 1f).forward(filled(T * H, 1.0625f), T, K, randomExperts(12),
        filled(T * K, 1f));
    Tolerance.assertBitEqual(noMulQ, filled(T * H, 131072.0f), "input 1.0625 quantized to 1");
  }

  @Test
  void nvfp4DoubleQuantizationHandValues() {
    // dblq 0.5; block scale 1.25 → 1.25/0.5 = 2.5 (e4m3 exact) → s' = 1.25;
    // block scale 1.3 → 2.6 → e4m3 2.5 → s' = 1.25; block scale 300 → 600 → saturates to 448 → s' = 224.
    float[] w = new float[48];
    w[0] = 2.0f; // 2 / 1.25 = 1.6 → e2m1 1.5 → 1.875
    w[1] = 7.0f; // 5.6 → 6 → 7.5
    w[2] = -0.3f; // -0.24 → -0 → -0.0
    w[3] = 100f; // 80 → saturates to 6 → 7.5
    w[4] = 0.9375f; // 0.75 → tie between 0.5 and 1 → even code (1.0) → 1.25
    w[16] = 2.0f; // second block, s' = 1.25 as well → 1.875
    w[32] = 1000f; // third block, s' = 224: 4.46 → 4 → 896
    w[33] = -600f; // -2.68 → -3 → -672
    float[] got = WeightDequant.nvfp4DoubleQuantized(w, 1, 48, new float[] {1.25f, 1.3f, 300f}, 0.5f);
    float[] expected = new float[48];
    expected[0] = 1.875f;
    expected[1] = 7.5f;
    expected[2] = -0.0f;
    expected[3] = 7.5f;
    expected[4] = 1.25f;
    expected[16] = 1.875f;
    expected[32] = 896f;
    expected[33] = -672f;
    Tolerance.assertBitEqual(got, expected, "nvfp4 double quantization");
  }

  @Test
  void fp8StaticQuantDequantHandValues() {
    assertEquals(448f, LayerNumerics.fp8QuantDequant(1024f, 1f), 0f);
    assertEquals(-448f, LayerNumerics.fp8QuantDequant(Float.NEGATIVE_INFINITY, 1f), 0f);
    assertEquals(448f, LayerNumerics.fp8QuantDequant(464f, 1f), 0f); // tie → even (448)
    assertEquals(384f, LayerNumerics.fp8QuantDequant(400f, 1f), 0f);
    assertEquals(416f, LayerNumerics.fp8QuantDequant(401f, 1f), 0f);
    assertEquals(0x1p-9f, LayerNumerics.fp8QuantDequant(0x1p-9f, 0.5f), 0f); // 2^-8 on the e4m3 grid, × 0.5
    assertEquals(0f, LayerNumerics.fp8QuantDequant(0x1p-10f, 1f), 0f); // tie to 0
    assertEquals(1.125f, LayerNumerics.fp8QuantDequant(1.0625f * 1.0625f, 1f), 0f);
    assertEquals(true, Float.isNaN(LayerNumerics.fp8QuantDequant(Float.NaN, 1f)));
    assertEquals(0x7E, LayerNumerics.e4m3EncodeSaturating(1e9f));
    assertEquals(0xFE, LayerNumerics.e4m3EncodeSaturating(-500f));
    // models-and-formats §3.12 vectors (all in range, so saturating = torch)
    float[] xs = {0f, 1f, 1.0625f, 1.09375f, 240f, 248f, 256f, 272f, 288f, 416f, 432f, 440f, 0x1p-6f, 0x1p-7f, 0x1p-9f,
        0x1p-10f, 1.5f * 0x1p-10f, 0.75f, 5f, 7f, 3f, 1.5f, 0.25f, -0.1f};
    int[] codes = {0x00, 0x38, 0x38, 0x39, 0x77, 0x78, 0x78, 0x78, 0x79, 0x7D, 0x7E, 0x7E, 0x08, 0x04, 0x01, 0x00,
        0x01, 0x34, 0x4A, 0x4E, 0x44, 0x3C, 0x28, 0x9D};
    for (int i = 0; i < xs.length; i++) {
      assertEquals(codes[i], LayerNumerics.e4m3EncodeSaturating(xs[i]), "e4m3 code of " + xs[i]);
    }
  }
}
