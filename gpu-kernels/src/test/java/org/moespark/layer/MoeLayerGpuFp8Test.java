package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.moespark.cuda.NativeLibrary;
import org.moespark.testing.Tolerance;

/**
 * The GPU layer with FP8 expert GEMMs ({@link GemmPrecision#FP8}) against the fp32/bf16 CPU layer.
 *
 * <p>Tolerance: {@code Tolerance.FP8} (8e-2 relative norm). The FP8 layer quantizes four GEMM operands to
 * e4m3 (3 mantissa bits; with per-block scales every value keeps its relative precision, ~2.4% RMS
 * rounding error each): x and the gate/up weights (the gate/up products' relative error ~3.4%), then the
 * activations and the down weights (~3.4% more, on top of what SwiGLU passes on): ~5% expected, measured
 * values are printed. The routing runs on the CPU router (bf16/fp32 as before): ids and weights are still
 * bit-identical.
 */
@Tag("gpu")
class MoeLayerGpuFp8Test {
  @BeforeEach
  void gpu() {
    assumeTrue(NativeLibrary.isAvailable(), NativeLibrary.describe());
  }

  private static void compare(MoeLayer.Output gpu, MoeLayer.Output cpu, String what) {
    assertArrayEquals(cpu.topkIds(), gpu.topkIds(), what + " ids");
    Tolerance.assertBitEqual(gpu.topkWeights(), cpu.topkWeights(), what + " weights");
    System.out.printf("FP8 layer %s: y relative error vs the CPU layer %.3e%n", what,
        Tolerance.relativeError(gpu.y(), cpu.y()));
    Tolerance.FP8.assertClose(gpu.y(), cpu.y(), what + " y");
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss"})
  void familyMatchesTheCpuLayer(String name) {
    MoeBlockSpec s = MoeLayerTest.family(name, name.hashCode());
    for (Compute c : Compute.values()) {
      MoeBlockSpec spec = c == Compute.BF16 ? MoeLayerTest.bf16(s) : s;
      float[] x = Naive.randn(new Random(5), 300 * MoeLayerTest.H, 1.0);
      try (MoeLayerGpu g = MoeLayerGpu.create(spec, c, GemmPrecision.FP8);
          MoeLayerGpu b = MoeLayerGpu.create(spec, c, GemmPrecision.BF16);
          MoeLayer cpu = MoeLayer.create(spec, new LayerOptions(Backend.CPU, c))) {
        assertEquals(GemmPrecision.FP8, g.gemmPrecision());
        MoeLayer.Output got = g.forward(x, 300);
        compare(got, cpu.forward(x, 300), name + " " + c);
        // the FP8 path really ran: not the bf16 layer's bits
        assertFalse(java.util.Arrays.equals(got.y(), b.forward(x, 300).y()), name + ": FP8 y equals bf16 y");
        // one token alone vs its row in the batch: the FP8 GEMMs give the same bits per row (per-row activation
        // scales, fixed k order), the CPU router's fp32 logits may differ in the last bit between a 1-row and a
        // 300-row call (seen on the H100: 1 ulp), hence FP32's tolerance; a single 32-wide row is too small a
        // sample for the FP8 norm tolerance against the CPU layer
        float[] one = java.util.Arrays.copyOf(x, MoeLayerTest.H);
        MoeLayer.Output alone = g.forward(one, 1);
        assertArrayEquals(java.util.Arrays.copyOf(got.topkIds(), cpu.topK()), alone.topkIds(), name + " one token ids");
        Tolerance.FP32.assertClose(alone.y(), java.util.Arrays.copyOf(got.y(), MoeLayerTest.H),
            name + " " + c + " one token vs its row in the batch");
        assertEquals(0, g.forward(new float[0], 0).y().length);
      }
    }
  }

  /** Intermediate 203 (padded to 208 for FP8), 1223 tokens, an expert never chosen, a shared expert. */
  @Test
  void largerLayerWithRaggedShapesMatchesTheCpu() {
    int h = 272;
    MoeBlockSpec s = Naive.raggedLayer(h);
    float[] x = Naive.randn(new Random(2), 1223 * h, 1.0);
    for (Compute c : Compute.values()) {
      try (MoeLayerGpu g = MoeLayerGpu.create(s, c, GemmPrecision.FP8);
          MoeLayer cpu = MoeLayer.create(s, new LayerOptions(Backend.CPU, c))) {
        assertEquals(208, g.paddedIntermediate());
        compare(g.forward(x, 1223), cpu.forward(x, 1223), "ragged " + c);
      }
    }
  }

  @Test
  void systemPropertySelectsFp8AndHiddenMustBeAMultipleOf16() {
    MoeBlockSpec s = MoeLayerTest.family("mixtral", 3);
    Naive.withSystemProperty(GemmPrecision.PROPERTY, "fp8", () -> {
      try (MoeLayer l = MoeLayer.create(s, new LayerOptions(Backend.GPU, Compute.FP32))) {
        assertEquals(GemmPrecision.FP8, l.gpu().gemmPrecision());
      }
    });
    Random r = new Random(1);
    int h = 40;
    List<ExpertWeights> ex = List.of(Naive.randomExpert(r, h, 16, 0.1, false),
        Naive.randomExpert(r, h, 16, 0.1, false));
    MoeBlockSpec odd = new MoeBlockSpec("mixtral", RouterSpec.softmaxTopK(h, 2, 1, Naive.randn(r, 2 * h, 0.1), true,
        false), ex, GatedActivation.SWIGLU, null, null);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MoeLayerGpu.create(odd, Compute.FP32, GemmPrecision.FP8));
    assertTrue(e.getMessage().contains("FP8 GEMMs need hidden to be a multiple of 16"), e.getMessage());
  }
}
