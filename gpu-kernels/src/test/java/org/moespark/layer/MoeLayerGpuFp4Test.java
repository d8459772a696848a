package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.moespark.cuda.NativeLibrary;
import org.moespark.formats.Bf16;
import org.moespark.formats.Mxfp;
import org.moespark.formats.Nvfp4;
import org.moespark.testing.Tolerance;

/**
 * The GPU layer with FP4 expert weights ({@link GemmPrecision#MXFP4}, {@link GemmPrecision#NVFP4}: quantized on
 * the device at upload, dequantized inside {@link GroupedGemmFp4}) against the CPU layer.
 *
 * <p>MXFP4 on weights that are MXFP4 values already (what a GPT-OSS checkpoint holds after the loader's
 * dequantization): the device's re-quantization gives the same values back, so the FP4 layer is the bf16 layer
 * and matches the CPU layer within {@code Tolerance.BF16}. NVFP4 against the CPU layer run on the weights
 * quantized by the host twin ({@link Nvfp4}, the same per-matrix global scale): within {@code Tolerance.BF16}.
 * Plain random weights against the unquantized CPU layer: within {@code Tolerance.FP4_LAYER}. Routing runs on the CPU
 * router: ids and weights bit-identical.
 */
@Tag("gpu")
class MoeLayerGpuFp4Test {
  @BeforeEach
  void gpu() {
    assumeTrue(NativeLibrary.isAvailable(), NativeLibrary.describe());
  }

  private static void compare(MoeLayer.Output gpu, MoeLayer.Output cpu, Tolerance tol, String what) {
    assertArrayEquals(cpu.topkIds(), gpu.topkIds(), what + " ids");
    Tolerance.assertBitEqual(gpu.topkWeights(), cpu.topkWeights(), what + " weights");
    System.out.printf("FP4 layer %s: y relative error vs the CPU layer %.3e%n", what,
        Tolerance.relativeError(gpu.y(), cpu.y()));
    tol.assertClose(gpu.y(), cpu.y(), what + " y");
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss"})
  void mxfp4CheckpointValuesMatchTheCpuLayer(String name) {
    MoeBlockSpec s = MoeLayerTest.family(name, name.hashCode());
    MoeBlockSpec q = mapWeights(s, (w, rows, cols) -> mxRound(w, rows, cols));
    float[] x = Naive.randn(new Random(5), 300 * MoeLayerTest.H, 1.0);
    for (Compute c : Compute.values()) {
      MoeBlockSpec spec = c == Compute.BF16 ? MoeLayerTest.bf16(q) : q;
      try (MoeLayerGpu g = MoeLayerGpu.create(spec, c, GemmPrecision.MXFP4);
          MoeLayerGpu b = MoeLayerGpu.create(spec, c, GemmPrecision.BF16);
          MoeLayer cpu = MoeLayer.create(spec, new LayerOptions(Backend.CPU, c))) {
        assertEquals(GemmPrecision.MXFP4, g.gemmPrecision());
        MoeLayer.Output got = g.forward(x, 300);
        compare(got, cpu.forward(x, 300), Tolerance.BF16, name + " MXFP4 " + c);
        // the same weights as the bf16 layer's: within bf16 of it (activation roundings may differ in a bit)
        Tolerance.BF16.assertClose(got.y(), b.forward(x, 300).y(), name + " MXFP4 vs bf16 layer " + c);
        // fewer bytes even at this toy size (FP4 pads the intermediate width to 32, bf16 to 8; the real shapes'
        // 3.6x is in benchmarks/layer-gpu.md)
        assertTrue(g.weightBytes() < b.weightBytes(), name + ": FP4 layer holds " + g.weightBytes()
            + " bytes, the bf16 layer " + b.weightBytes());
        assertEquals(0, g.forward(new float[0], 0).y().length);
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"mixtral", "olmoe", "deepseek_v3", "gpt_oss"})
  void nvfp4MatchesTheCpuLayerOnTheHostQuantizedWeights(String name) {
    MoeBlockSpec s = MoeLayerTest.family(name, name.hashCode() + 1);
    float[] x = Naive.randn(new Random(6), 300 * MoeLayerTest.H, 1.0);
    try (MoeLayerGpu g = MoeLayerGpu.create(s, Compute.FP32, GemmPrecision.NVFP4);
        MoeLayer cpu = MoeLayer.create(nvRound(s), new LayerOptions(Backend.CPU, Compute.FP32));
        MoeLayer plain = MoeLayer.create(s, new LayerOptions(Backend.CPU, Compute.FP32))) {
      MoeLayer.Output got = g.forward(x, 300);
      compare(got, cpu.forward(x, 300), Tolerance.BF16, name + " NVFP4");
      // and within FP4's error of the unquantized layer (the quantization is real)
      double err = Tolerance.relativeError(got.y(), plain.forward(x, 300).y());
      System.out.printf("FP4 layer %s NVFP4: y relative error vs the unquantized CPU layer %.3e%n", name, err);
      assertTrue(err > 1e-3 && err <= Tolerance.FP4_LAYER.relative, name + ": " + err);
    }
  }

  /**
   * Routed experts that come with their checkpoint tensors ({@link MoeBlockSpec#fp4Experts}, as the loader keeps
   * them for MXFP4 / NVFP4 checkpoints): the layer uploads those codes, scales and per-tensor {@code weight_scale_2}
   * as they are, so it computes with exactly the checkpoint's weights — within bf16 of the CPU layer on the
   * dequantized values (gate and up with different global scales, inter 208 padded to 224, biases), and closer to
   * it than re-quantizing the dequantized values on the device.
   */
  @ParameterizedTest
  @ValueSource(strings = {"NVFP4", "MXFP4"})
  void checkpointFp4CodesAreUploadedAsTheyAre(String fmt) {
    org.moespark.model.WeightTensor.Format f = org.moespark.model.WeightTensor.Format.valueOf(fmt);
    Random r = new Random(17);
    int h = 64;
    int inter = f == org.moespark.model.WeightTensor.Format.NVFP4 ? 208 : 192;
    int e = 8;
    List<Fp4Expert> qs = new ArrayList<>();
    List<ExpertWeights> ws = new ArrayList<>();
    for (int i = 0; i < e; i++) {
      org.moespark.model.WeightTensor g = Fp4ExpertTest.tensor(f, "g" + i, Naive.randn(r, inter * h, 0.3), inter, h);
      org.moespark.model.WeightTensor u = Fp4ExpertTest.tensor(f, "u" + i, Naive.randn(r, inter * h, 2.0), inter, h);
      org.moespark.model.WeightTensor d = Fp4ExpertTest.tensor(f, "d" + i, Naive.randn(r, h * inter, 0.1), h, inter);
      qs.add(new Fp4Expert(g, u, d));
      ws.add(new ExpertWeights(h, inter, MoeBlockLoader.dequant(g), MoeBlockLoader.dequant(u),
          MoeBlockLoader.dequant(d), Naive.randn(r, inter, 0.1), Naive.randn(r, inter, 0.1), Naive.randn(r, h, 0.1)));
    }
    MoeBlockSpec s = new MoeBlockSpec("mixtral", RouterSpec.softmaxTopK(h, e, 2, Naive.randn(r, e * h, 0.3), true,
        false), ws, GatedActivation.SWIGLU, null, null, qs);
    GemmPrecision p = GemmPrecision.valueOf(fmt);
    float[] x = Naive.randn(new Random(4), 500 * h, 1.0);
    try (MoeLayerGpu g = MoeLayerGpu.create(s, Compute.FP32, p);
        MoeLayerGpu requant = MoeLayerGpu.create(s.withoutFp4(), Compute.FP32, p);
        MoeLayer cpu = MoeLayer.create(s, new LayerOptions(Backend.CPU, Compute.FP32))) {
      assertEquals((inter + 31) & -32, g.paddedIntermediate());
      MoeLayer.Output want = cpu.forward(x, 500);
      MoeLayer.Output got = g.forward(x, 500);
      compare(got, want, Tolerance.BF16, fmt + " checkpoint codes as they are");
      double asIs = Tolerance.relativeError(got.y(), want.y());
      double re = Tolerance.relativeError(requant.forward(x, 500).y(), want.y());
      System.out.printf("FP4 layer %s: checkpoint codes %.3e, re-quantized on the device %.3e%n", fmt, asIs, re);
      assertTrue(asIs <= re, fmt + ": as-is " + asIs + " vs re-quantized " + re);
    }
  }

  /** Intermediate 203 (padded to 224 for FP4), 1223 tokens, an expert never chosen, a shared expert. */
  @Test
  void largerLayerWithRaggedShapesIsWithinFp4OfTheCpu() {
    int h = 256;
    MoeBlockSpec s = Naive.raggedLayer(h);
    float[] x = Naive.randn(new Random(2), 1223 * h, 1.0);
    for (GemmPrecision p : new GemmPrecision[] {GemmPrecision.MXFP4, GemmPrecision.NVFP4}) {
      try (MoeLayerGpu g = MoeLayerGpu.create(s, Compute.BF16, p);
          MoeLayer cpu = MoeLayer.create(s, new LayerOptions(Backend.CPU, Compute.BF16))) {
        assertEquals(224, g.paddedIntermediate());
        compare(g.forward(x, 1223), cpu.forward(x, 1223), Tolerance.FP4_LAYER, "ragged " + p);
      }
    }
  }

  @Test
  void systemPropertySelectsFp4AndHiddenMustBeAMultipleOf32() {
    MoeBlockSpec s = MoeLayerTest.family("mixtral", 3);
    Naive.withSystemProperty(GemmPrecision.PROPERTY, "nvfp4", () -> {
      try (MoeLayer l = MoeLayer.create(s, new LayerOptions(Backend.GPU, Compute.FP32))) {
        assertEquals(GemmPrecision.NVFP4, l.gpu().gemmPrecision());
      }
    });
    Random r = new Random(1);
    int h = 48;
    List<ExpertWeights> ex = List.of(Naive.randomExpert(r, h, 32, 0.1, false),
        Naive.randomExpert(r, h, 32, 0.1, false));
    MoeBlockSpec odd = new MoeBlockSpec("mixtral", RouterSpec.softmaxTopK(h, 2, 1, Naive.randn(r, 2 * h, 0.1), true,
        false), ex, GatedActivation.SWIGLU, null, null);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> MoeLayerGpu.create(odd, Compute.FP32, GemmPrecision.MXFP4));
    assertTrue(e.getMessage().contains("FP4 GEMMs need hidden to be a multiple of 32")
        && e.getMessage().contains("got 48"), e.getMessage());
  }

  private interface MatrixMap {
    float[] apply(float[] w, int rows, int cols);
  }

  /** s with every routed and shared expert matrix replaced by {@code f} of it (biases, router unchanged). */
  private static MoeBlockSpec mapWeights(MoeBlockSpec s, MatrixMap f) {
    UnaryOperator<ExpertWeights> m = w -> w == null ? null
        : new ExpertWeights(w.hidden(), w.intermediate(), f.apply(w.gate(), w.intermediate(), w.hidden()),
            f.apply(w.up(), w.intermediate(), w.hidden()), f.apply(w.down(), w.hidden(), w.intermediate()),
            w.gateBias(), w.upBias(), w.downBias());
    return new MoeBlockSpec(s.modelType(), s.router(), s.experts().stream().map(m).toList(), s.activation(),
        m.apply(s.shared()), s.sharedGate());
  }

  /** MXFP4 quantize → dequantize of a [rows, cols] matrix along its rows, cols zero-padded to 32 (as the device). */
  private static float[] mxRound(float[] w, int rows, int cols) {
    int cp = (cols + 31) & ~31;
    float[] padded = pad(w, rows, cols, cp);
    byte[] codes = new byte[rows * cp / 2];
    byte[] scales = new byte[rows * cp / 32];
    Mxfp.quantize(Mxfp.Kind.MXFP4, padded, rows, cp, codes, scales);
    float[] out = new float[rows * cp];
    Mxfp.dequantize(Mxfp.Kind.MXFP4, codes, scales, rows, cp, out);
    return unpad(out, rows, cols, cp);
  }

  /**
   * s's expert weights as the NVFP4 layer holds them: per expert, gate and up share one global scale (the device
   * quantizes the interleaved gate/up matrix), down has its own; values bf16-rounded first, as uploaded.
   */
  private static MoeBlockSpec nvRound(MoeBlockSpec s) {
    UnaryOperator<ExpertWeights> m = w -> {
      if (w == null) {
        return null;
      }
      int i = w.intermediate();
      int h = w.hidden();
      float[] gate = bf16(w.gate());
      float[] up = bf16(w.up());
      float[] down = bf16(w.down());
      float gg = Nvfp4.globalScale(Math.max(Nvfp4.absMax(gate, 0, gate.length), Nvfp4.absMax(up, 0, up.length)));
      float dg = Nvfp4.globalScale(Nvfp4.absMax(down, 0, down.length));
      return new ExpertWeights(h, i, nvRound(gate, i, h, gg), nvRound(up, i, h, gg), nvRound(down, h, i, dg),
          w.gateBias(), w.upBias(), w.downBias());
    };
    return new MoeBlockSpec(s.modelType(), s.router(), s.experts().stream().map(m).toList(), s.activation(),
        m.apply(s.shared()), s.sharedGate());
  }

  private static float[] nvRound(float[] w, int rows, int cols, float global) {
    int cp = (cols + 31) & ~31;
    float[] padded = pad(w, rows, cols, cp);
    byte[] codes = new byte[rows * cp / 2];
    byte[] scales = new byte[rows * cp / 16];
    Nvfp4.quantize(padded, rows, cp, global, codes, scales);
    float[] out = new float[rows * cp];
    Nvfp4.dequantize(codes, scales, global, rows, cp, out);
    return unpad(out, rows, cols, cp);
  }

  private static float[] bf16(float[] w) {
    float[] o = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      o[i] = Bf16.round(w[i]);
    }
    return o;
  }

  private static float[] pad(float[] w, int rows, int cols, int cp) {
    float[] p = new float[rows * cp];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(w, r * cols, p, r * cp, cols);
    }
    return p;
  }

  private static float[] unpad(float[] p, int rows, int cols, int cp) {
    float[] w = new float[rows * cols];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(p, r * cp, w, r * cols, cols);
    }
    return w;
  }
}
