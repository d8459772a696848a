package org.moespark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.moespark.model.MoeBlockWeights.Expert;
import org.moespark.model.MoeBlockWeights.Layout;
import org.moespark.model.MoeConfig.Family;
import org.moespark.model.WeightTensor.Format;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MoeBlockWeightsTest {
  @TempDir
  Path dir;

  static final int H = 8;
  static final int I = 4;
  static final int E = 3;

  private static float[] random(Random rnd, int n) {
    float[] v = new float[n];
    for (int k = 0; k < n; k++) {
      v[k] = (float) rnd.nextGaussian();
    }
    return v;
  }

  private static byte[] bytesOf(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  private static float[] concat(float[]... parts) {
    int n = 0;
    for (float[] p : parts) {
      n += p.length;
    }
    float[] out = new float[n];
    int at = 0;
    for (float[] p : parts) {
      System.arraycopy(p, 0, out, at, p.length);
      at += p.length;
    }
    return out;
  }

  private Checkpoint write(String name, SafeTensorsWriter w) throws IOException {
    Path d = Files.createDirectories(dir.resolve(name));
    w.write(d.resolve("model.safetensors"));
    return Checkpoint.open(d);
  }

  /** Random expert weights: gate[e], up[e] as [I, H], down[e] as [H, I]; router [E, H]. */
  private static final class Source {
    final float[][] gate = new float[E][];
    final float[][] up = new float[E][];
    final float[][] down = new float[E][];
    final float[] router;

    Source(long seed) {
      Random rnd = new Random(seed);
      for (int e = 0; e < E; e++) {
        gate[e] = random(rnd, I * H);
        up[e] = random(rnd, I * H);
        down[e] = random(rnd, H * I);
      }
      router = random(rnd, E * H);
    }

    SafeTensorsWriter perExpert(String prefix, String g, String u, String d, DType dt) {
      SafeTensorsWriter w = new SafeTensorsWriter().addFloats(prefix + "gate.weight", dt, new long[] {E, H}, router);
      for (int e = 0; e < E; e++) {
        w.addFloats(prefix + "experts." + e + "." + g + ".weight", dt, new long[] {I, H}, gate[e]);
        w.addFloats(prefix + "experts." + e + "." + u + ".weight", dt, new long[] {I, H}, up[e]);
        w.addFloats(prefix + "experts." + e + "." + d + ".weight", dt, new long[] {H, I}, down[e]);
      }
      return w;
    }

    SafeTensorsWriter fused(String prefix, DType dt) {
      float[] gu = new float[0];
      float[] dn = new float[0];
      for (int e = 0; e < E; e++) {
        gu = concat(gu, gate[e], up[e]); // [E, 2I, H]: gate rows, then up rows
        dn = concat(dn, down[e]);
      }
      return new SafeTensorsWriter().addFloats(prefix + "gate.weight", dt, new long[] {E, H}, router)
          .addFloats(prefix + "experts.gate_up_proj", dt, new long[] {E, 2 * I, H}, gu)
          .addFloats(prefix + "experts.down_proj", dt, new long[] {E, H, I}, dn);
    }
  }

  private static MoeConfig qwen3() {
    return MoeConfig.builder(Family.QWEN3_MOE).hiddenSize(H).numExperts(E).topK(2).expertIntermediateSize(I).build();
  }

  private static void assertSameExperts(MoeBlockWeights a, MoeBlockWeights b) {
    assertEquals(E, a.experts().size());
    assertEquals(E, b.experts().size());
    for (int e = 0; e < E; e++) {
      Expert x = a.expert(e);
      Expert y = b.expert(e);
      assertArrayEquals(bytesOf(x.gate().data()), bytesOf(y.gate().data()), "gate of expert " + e);
      assertArrayEquals(bytesOf(x.up().data()), bytesOf(y.up().data()), "up of expert " + e);
      assertArrayEquals(bytesOf(x.down().data()), bytesOf(y.down().data()), "down of expert " + e);
      assertEquals(x.gate().format(), y.gate().format());
    }
    assertArrayEquals(bytesOf(a.router().data()), bytesOf(b.router().data()), "router");
  }

  @Test
  void perExpertAndFusedLayoutsGiveIdenticalExperts() throws IOException {
    Source src = new Source(1);
    String p = "model.layers.0.mlp.";
    for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F16}) {
      try (Checkpoint a = write("a" + dt, src.perExpert(p, "gate_proj", "up_proj", "down_proj", dt));
          Checkpoint b = write("b" + dt, src.fused(p, dt))) {
        MoeBlockWeights wa = MoeBlockWeights.load(a, qwen3(), 0);
        MoeBlockWeights wb = MoeBlockWeights.load(b, qwen3(), 0);
        assertEquals(Layout.PER_EXPERT, wa.layout());
        assertEquals(Layout.FUSED, wb.layout());
        assertEquals(p, wa.prefix());
        assertSameExperts(wa, wb);
        assertEquals(Format.ofFloat(dt), wb.expert(2).up().format());
        assertEquals(I, wb.expert(2).up().rows());
        assertEquals(H, wb.expert(2).up().cols());
        assertEquals(H, wb.expert(2).down().rows());
        assertEquals(I, wb.expert(2).down().cols());
        assertNull(wa.sharedExpert());
        assertNull(wa.routerBias());
        assertNull(wa.expert(0).gateBias());
      }
    }
    // F32: values are exactly the source arrays
    try (Checkpoint b = write("f32", src.fused(p, DType.F32))) {
      MoeBlockWeights w = MoeBlockWeights.load(b, qwen3(), 0);
      for (int e = 0; e < E; e++) {
        assertArrayEquals(src.gate[e], w.expert(e).gate().toFloatArray(), "gate " + e);
        assertArrayEquals(src.up[e], w.expert(e).up().toFloatArray(), "up " + e);
        assertArrayEquals(src.down[e], w.expert(e).down().toFloatArray(), "down " + e);
      }
      assertArrayEquals(src.router, w.router().toFloatArray());
      assertTrue(w.expert(0).gate().data().isDirect() && w.expert(0).gate().data().isReadOnly());
    }
  }

  @Test
  void mixtralHubNamesAndFusedLayoutUnderMlp() throws IOException {
    Source src = new Source(2);
    MoeConfig cfg = MoeConfig.builder(Family.MIXTRAL).hiddenSize(H).numExperts(E).topK(2).expertIntermediateSize(I)
        .numHiddenLayers(2).build();
    try (Checkpoint a = write("mixA", src.perExpert("model.layers.1.block_sparse_moe.", "w1", "w3", "w2", DType.BF16));
        Checkpoint b = write("mixB", src.fused("model.layers.1.mlp.", DType.BF16))) {
      MoeBlockWeights wa = MoeBlockWeights.load(a, cfg, 1);
      MoeBlockWeights wb = MoeBlockWeights.load(b, cfg, 1);
      assertEquals("model.layers.1.block_sparse_moe.", wa.prefix());
      assertEquals("model.layers.1.mlp.", wb.prefix());
      assertSameExperts(wa, wb);
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(a, cfg, 0));
      assertTrue(e.getMessage().contains("model.layers.0.block_sparse_moe.gate.weight")
          && e.getMessage().contains("model.layers.0.mlp.gate.weight"), e.getMessage());
    }
  }

  @Test
  void qwen2SharedExpertAndGate() throws IOException {
    Source src = new Source(3);
    int ish = 6;
    Random rnd = new Random(4);
    float[] sg = random(rnd, ish * H);
    float[] su = random(rnd, ish * H);
    float[] sd = random(rnd, H * ish);
    float[] gate = random(rnd, H);
    String p = "model.layers.0.mlp.";
    SafeTensorsWriter w = src.perExpert(p, "gate_proj", "up_proj", "down_proj", DType.F32)
        .addFloats(p + "shared_expert.gate_proj.weight", DType.F32, new long[] {ish, H}, sg)
        .addFloats(p + "shared_expert.up_proj.weight", DType.F32, new long[] {ish, H}, su)
        .addFloats(p + "shared_expert.down_proj.weight", DType.F32, new long[] {H, ish}, sd)
        .addFloats(p + "shared_expert_gate.weight", DType.F32, new long[] {1, H}, gate);
    MoeConfig cfg = MoeConfig.builder(Family.QWEN2_MOE).hiddenSize(H).numExperts(E).topK(2).expertIntermediateSize(I)
        .sharedExpertIntermediateSize(ish).build();
    try (Checkpoint c = write("qwen2", w)) {
      MoeBlockWeights m = MoeBlockWeights.load(c, cfg, 0);
      assertArrayEquals(sg, m.sharedExpert().gate().toFloatArray());
      assertArrayEquals(su, m.sharedExpert().up().toFloatArray());
      assertArrayEquals(sd, m.sharedExpert().down().toFloatArray());
      assertEquals(ish, m.sharedExpert().intermediateSize());
      assertArrayEquals(gate, m.sharedExpertGate().toFloatArray());
      assertEquals(1, m.sharedExpertGate().rows());
      assertEquals(H, m.sharedExpertGate().cols());
      assertArrayEquals(src.down[1], m.expert(1).down().toFloatArray());
    }
  }

  private static byte[] seq(int n, int mul, int add) {
    byte[] b = new byte[n];
    for (int k = 0; k < n; k++) {
      b[k] = (byte) (k * mul + add);
    }
    return b;
  }

  private static byte[] f32(float... v) {
    ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float f : v) {
      b.putFloat(f);
    }
    return b.array();
  }

  @Test
  void deepseekFp8BlockExpertsWithBiasAndSharedExperts() throws IOException {
    int h = 32;
    int i = 16;
    int e = 4;
    MoeConfig cfg = MoeConfig.builder(Family.DEEPSEEK_V3).hiddenSize(h).numExperts(e).topK(2).expertIntermediateSize(i)
        .nGroup(2).topkGroup(1).numSharedExperts(2).firstKDenseReplace(1).numHiddenLayers(2)
        .quantization(MoeConfig.Quantization.fp8Block(16, 16, null)).build();
    String p = "model.layers.1.mlp.";
    Random rnd = new Random(5);
    float[] router = random(rnd, e * h);
    float[] bias = {0.5f, -0.25f, 0f, 1f};
    SafeTensorsWriter w = new SafeTensorsWriter().addFloats(p + "gate.weight", DType.F32, new long[] {e, h}, router)
        .addFloats(p + "gate.e_score_correction_bias", DType.F32, new long[] {e}, bias);
    for (int x = 0; x < e; x++) {
      for (String n : new String[] {"gate_proj", "up_proj"}) {
        w.add(p + "experts." + x + "." + n + ".weight", DType.F8_E4M3, new long[] {i, h}, seq(i * h, 3, x));
        w.add(p + "experts." + x + "." + n + ".weight_scale_inv", DType.F32, new long[] {1, 2}, f32(x + 1, x + 2));
      }
      w.add(p + "experts." + x + ".down_proj.weight", DType.F8_E4M3, new long[] {h, i}, seq(h * i, 5, x));
      w.add(p + "experts." + x + ".down_proj.weight_scale_inv", DType.F32, new long[] {2, 1}, f32(7, 8));
    }
    int ish = 2 * i;
    w.add(p + "shared_experts.gate_proj.weight", DType.F8_E4M3, new long[] {ish, h}, seq(ish * h, 1, 0));
    w.add(p + "shared_experts.gate_proj.weight_scale_inv", DType.F32, new long[] {2, 2}, f32(1, 2, 3, 4));
    w.addFloats(p + "shared_experts.up_proj.weight", DType.BF16, new long[] {ish, h}, random(rnd, ish * h));
    w.addFloats(p + "shared_experts.down_proj.weight", DType.BF16, new long[] {h, ish}, random(rnd, h * ish));
    try (Checkpoint c = write("ds", w)) {
      MoeBlockWeights m = MoeBlockWeights.load(c, cfg, 1);
      assertArrayEquals(bias, m.scoreCorrectionBias().toFloatArray());
      assertArrayEquals(router, m.router().toFloatArray());
      WeightTensor g = m.expert(2).gate();
      assertEquals(Format.FP8_E4M3_BLOCK128, g.format());
      assertEquals(16, g.blockRows());
      assertEquals(16, g.blockCols());
      assertEquals(1, g.scaleRows());
      assertEquals(2, g.scaleCols());
      assertEquals(DType.F32, g.scalesDtype());
      assertArrayEquals(seq(i * h, 3, 2), bytesOf(g.data()));
      assertArrayEquals(f32(3, 4), bytesOf(g.scales()));
      assertArrayEquals(seq(h * i, 5, 3), bytesOf(m.expert(3).down().data()));
      assertEquals(2, m.expert(3).down().scaleRows());
      Expert sh = m.sharedExpert();
      assertEquals(ish, sh.intermediateSize());
      assertEquals(Format.FP8_E4M3_BLOCK128, sh.gate().format());
      assertEquals(Format.BF16, sh.up().format());
      assertNull(m.sharedExpertGate(), "DeepSeek's shared experts are not gated");
      IllegalArgumentException dense = assertThrows(IllegalArgumentException.class, () -> MoeBlockWeights.load(c, cfg, 0));
      assertTrue(dense.getMessage().startsWith("layer 0 of deepseek_v3 is dense (first_k_dense_replace=1)"),
          dense.getMessage());
    }
    // an FP8 weight without its scales, and scales of the wrong shape
    SafeTensorsWriter noScale = new SafeTensorsWriter().addFloats(p + "gate.weight", DType.F32, new long[] {e, h}, router)
        .addFloats(p + "gate.e_score_correction_bias", DType.F32, new long[] {e}, bias)
        .add(p + "experts.0.gate_proj.weight", DType.F8_E4M3, new long[] {i, h}, seq(i * h, 1, 0));
    try (Checkpoint c = write("ds2", noScale)) {
      SafeTensorsException ex = assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(c, cfg, 1));
      assertTrue(ex.getMessage().contains("experts.0.gate_proj.weight_scale_inv"), ex.getMessage());
    }
  }

  @Test
  void nvfp4Experts() throws IOException {
    int h = 32;
    int i = 16;
    MoeConfig cfg = MoeConfig.builder(Family.QWEN3_MOE).hiddenSize(h).numExperts(1).topK(1).expertIntermediateSize(i)
        .quantization(MoeConfig.Quantization.nvfp4(16, java.util.List.of("lm_head"))).build();
    String p = "model.layers.0.mlp.";
    SafeTensorsWriter w = new SafeTensorsWriter().addFloats(p + "gate.weight", DType.BF16, new long[] {1, h}, new float[h]);
    String[] names = {"gate_proj", "up_proj", "down_proj"};
    int[][] dims = {{i, h}, {i, h}, {h, i}};
    for (int k = 0; k < 3; k++) {
      String b = p + "experts.0." + names[k];
      int rows = dims[k][0];
      int cols = dims[k][1];
      w.add(b + ".weight", DType.U8, new long[] {rows, cols / 2}, seq(rows * cols / 2, 7, k));
      w.add(b + ".weight_scale", DType.F8_E4M3, new long[] {rows, cols / 16}, seq(rows * cols / 16, 11, k));
      w.add(b + ".weight_scale_2", DType.F32, new long[] {}, f32(0.125f * (k + 1)));
      if (k == 0) {
        w.add(b + ".input_scale", DType.F32, new long[] {}, f32(0.5f));
      }
    }
    try (Checkpoint c = write("nv", w)) {
      MoeBlockWeights m = MoeBlockWeights.load(c, cfg, 0);
      WeightTensor g = m.expert(0).gate();
      assertEquals(Format.NVFP4, g.format());
      assertEquals(i, g.rows());
      assertEquals(h, g.cols());
      assertArrayEquals(seq(i * h / 2, 7, 0), bytesOf(g.data()));
      assertArrayEquals(seq(i * h / 16, 11, 0), bytesOf(g.scales()));
      assertEquals(DType.F8_E4M3, g.scalesDtype());
      assertEquals(0.125f, g.globalScale());
      assertEquals(0.5f, g.inputScale());
      WeightTensor d = m.expert(0).down();
      assertEquals(h, d.rows());
      assertEquals(i, d.cols());
      assertEquals(0.375f, d.globalScale());
      assertTrue(Float.isNaN(d.inputScale()));
      assertArrayEquals(seq(h * i / 16, 11, 2), bytesOf(d.scales()));
      assertThrows(IllegalStateException.class, g::toFloatArray);
    }
  }

  @Test
  void gptOssDeinterleavesAndTransposesByHand() throws IOException {
    int h = 3;
    int i = 2;
    int e = 2;
    MoeConfig cfg = MoeConfig.builder(Family.GPT_OSS).hiddenSize(h).numExperts(e).topK(1).expertIntermediateSize(i).build();
    String p = "model.layers.0.mlp.";
    // gate_up_proj[x][hh][c] = 10000x + 100hh + c     (c < 2I: even = gate, odd = up)
    float[] gu = new float[e * h * 2 * i];
    for (int x = 0; x < e; x++) {
      for (int hh = 0; hh < h; hh++) {
        for (int c = 0; c < 2 * i; c++) {
          gu[(x * h + hh) * 2 * i + c] = 10000 * x + 100 * hh + c;
        }
      }
    }
    // down_proj[x][ii][hh] = 10000x + 100ii + hh + 0.5
    float[] dn = new float[e * i * h];
    for (int x = 0; x < e; x++) {
      for (int ii = 0; ii < i; ii++) {
        for (int hh = 0; hh < h; hh++) {
          dn[(x * i + ii) * h + hh] = 10000 * x + 100 * ii + hh + 0.5f;
        }
      }
    }
    float[] gub = {1, 2, 3, 4, 11, 12, 13, 14};
    float[] db = {-1, -2, -3, -11, -12, -13};
    SafeTensorsWriter w = new SafeTensorsWriter()
        .addFloats(p + "router.weight", DType.F32, new long[] {e, h}, new float[] {1, 2, 3, 4, 5, 6})
        .addFloats(p + "router.bias", DType.F32, new long[] {e}, new float[] {0.5f, -0.5f})
        .addFloats(p + "experts.gate_up_proj", DType.F32, new long[] {e, h, 2 * i}, gu)
        .addFloats(p + "experts.gate_up_proj_bias", DType.F32, new long[] {e, 2 * i}, gub)
        .addFloats(p + "experts.down_proj", DType.F32, new long[] {e, i, h}, dn)
        .addFloats(p + "experts.down_proj_bias", DType.F32, new long[] {e, h}, db);
    try (Checkpoint c = write("oss", w)) {
      MoeBlockWeights m = MoeBlockWeights.load(c, cfg, 0);
      assertEquals(Layout.GPT_OSS, m.layout());
      assertArrayEquals(new float[] {0.5f, -0.5f}, m.routerBias().toFloatArray());
      // expert 1: gate[ii][hh] = 10000 + 100hh + 2ii ; up = ... + 2ii + 1 ; down[hh][ii] = 10000 + 100ii + hh + .5
      Expert x1 = m.expert(1);
      assertArrayEquals(new float[] {10000, 10100, 10200, 10002, 10102, 10202}, x1.gate().toFloatArray());
      assertArrayEquals(new float[] {10001, 10101, 10201, 10003, 10103, 10203}, x1.up().toFloatArray());
      assertArrayEquals(new float[] {10000.5f, 10100.5f, 10001.5f, 10101.5f, 10002.5f, 10102.5f},
          x1.down().toFloatArray());
      assertArrayEquals(new float[] {11, 13}, x1.gateBias().toFloatArray());
      assertArrayEquals(new float[] {12, 14}, x1.upBias().toFloatArray());
      assertArrayEquals(new float[] {-11, -12, -13}, x1.downBias().toFloatArray());
      Expert x0 = m.expert(0);
      assertArrayEquals(new float[] {0, 100, 200, 2, 102, 202}, x0.gate().toFloatArray());
      assertArrayEquals(new float[] {1, 3}, x0.gateBias().toFloatArray());
      assertEquals(i, x0.gate().rows());
      assertEquals(h, x0.gate().cols());
      assertEquals(h, x0.down().rows());
      assertEquals(i, x0.down().cols());
    }
  }

  @Test
  void gptOssMxfp4DeinterleavesBlockRows() throws IOException {
    int h = 64;
    int i = 32;
    int e = 2;
    MoeConfig cfg = MoeConfig.builder(Family.GPT_OSS).hiddenSize(h).numExperts(e).topK(1).expertIntermediateSize(i)
        .quantization(MoeConfig.Quantization.mxfp4(java.util.List.of())).build();
    String p = "model.layers.0.mlp.experts.";
    int gRow = h / 2; // bytes per gate_up row: H/32 blocks of 16
    byte[] guBlocks = new byte[e * 2 * i * gRow];
    for (int x = 0; x < e; x++) {
      for (int r = 0; r < 2 * i; r++) {
        for (int k = 0; k < gRow; k++) {
          guBlocks[(x * 2 * i + r) * gRow + k] = (byte) (x * 101 + r * 7 + k);
        }
      }
    }
    byte[] guScales = new byte[e * 2 * i * (h / 32)];
    for (int k = 0; k < guScales.length; k++) {
      guScales[k] = (byte) (100 + k); // [x][r][g] -> 100 + (x*2I + r)*2 + g
    }
    SafeTensorsWriter w = new SafeTensorsWriter()
        .addFloats("model.layers.0.mlp.router.weight", DType.BF16, new long[] {e, h}, new float[e * h])
        .addFloats("model.layers.0.mlp.router.bias", DType.BF16, new long[] {e}, new float[e])
        .add(p + "gate_up_proj_blocks", DType.U8, new long[] {e, 2 * i, h / 32, 16}, guBlocks)
        .add(p + "gate_up_proj_scales", DType.U8, new long[] {e, 2 * i, h / 32}, guScales)
        .add(p + "down_proj_blocks", DType.U8, new long[] {e, h, i / 32, 16}, seq(e * h * i / 2, 3, 1))
        .add(p + "down_proj_scales", DType.U8, new long[] {e, h, i / 32}, seq(e * h * i / 32, 1, 120))
        .addFloats(p + "gate_up_proj_bias", DType.BF16, new long[] {e, 2 * i}, new float[e * 2 * i])
        .addFloats(p + "down_proj_bias", DType.BF16, new long[] {e, h}, new float[e * h]);
    try (Checkpoint c = write("mx", w)) {
      MoeBlockWeights m = MoeBlockWeights.load(c, cfg, 0);
      for (int x = 0; x < e; x++) {
        WeightTensor gate = m.expert(x).gate();
        WeightTensor up = m.expert(x).up();
        assertEquals(Format.MXFP4, gate.format());
        assertEquals(DType.F8_E8M0, gate.scalesDtype());
        assertEquals(i, gate.rows());
        assertEquals(h, gate.cols());
        ByteBuffer gd = gate.data();
        ByteBuffer ud = up.data();
        ByteBuffer gs = gate.scales();
        for (int ii = 0; ii < i; ii++) {
          for (int k = 0; k < gRow; k++) {
            assertEquals((byte) (x * 101 + (2 * ii) * 7 + k), gd.get(ii * gRow + k), "gate byte");
            assertEquals((byte) (x * 101 + (2 * ii + 1) * 7 + k), ud.get(ii * gRow + k), "up byte");
          }
          for (int g = 0; g < h / 32; g++) {
            assertEquals((byte) (100 + (x * 2 * i + 2 * ii) * 2 + g), gs.get(ii * 2 + g), "gate scale");
          }
        }
        WeightTensor down = m.expert(x).down();
        assertEquals(h, down.rows());
        assertEquals(i, down.cols());
        byte[] want = java.util.Arrays.copyOfRange(seq(e * h * i / 2, 3, 1), x * h * i / 2, (x + 1) * h * i / 2);
        assertArrayEquals(want, bytesOf(down.data()));
        assertArrayEquals(java.util.Arrays.copyOfRange(seq(e * h * i / 32, 1, 120), x * h, (x + 1) * h),
            bytesOf(down.scales()));
      }
    }
  }

  @Test
  void reportsShapeMismatchesMissingAndExtraTensors() throws IOException {
    Source src = new Source(9);
    String p = "model.layers.0.mlp.";
    SafeTensorsWriter bad = src.perExpert(p, "gate_proj", "up_proj", "down_proj", DType.F32);
    try (Checkpoint c = write("shape", bad)) {
      MoeConfig wrongI = MoeConfig.builder(Family.QWEN3_MOE).hiddenSize(H).numExperts(E).topK(2)
          .expertIntermediateSize(I + 1).build();
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(c, wrongI, 0));
      assertTrue(e.getMessage().contains("'model.layers.0.mlp.experts.0.gate_proj.weight'")
          && e.getMessage().contains("expected shape [I=5, H=8], got [4, 8]"), e.getMessage());
      MoeConfig fewer = MoeConfig.builder(Family.QWEN3_MOE).hiddenSize(H).numExperts(E - 1).topK(2)
          .expertIntermediateSize(I).build();
      SafeTensorsException router = assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(c, fewer, 0));
      assertTrue(router.getMessage().contains("gate.weight") && router.getMessage().contains("[E=2, H=8], got [3, 8]"),
          router.getMessage());
      MoeConfig more = MoeConfig.builder(Family.QWEN3_MOE).hiddenSize(H).numExperts(E + 1).topK(2)
          .expertIntermediateSize(I).build();
      assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(c, more, 0));
    }
    // router present, experts with one tensor missing
    SafeTensorsWriter missing = new SafeTensorsWriter()
        .addFloats(p + "gate.weight", DType.F32, new long[] {E, H}, src.router);
    for (int e = 0; e < E; e++) {
      missing.addFloats(p + "experts." + e + ".gate_proj.weight", DType.F32, new long[] {I, H}, src.gate[e]);
      missing.addFloats(p + "experts." + e + ".up_proj.weight", DType.F32, new long[] {I, H}, src.up[e]);
      if (e != 1) {
        missing.addFloats(p + "experts." + e + ".down_proj.weight", DType.F32, new long[] {H, I}, src.down[e]);
      }
    }
    try (Checkpoint c = write("missing", missing)) {
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(c, qwen3(), 0));
      assertTrue(e.getMessage().contains("'model.layers.0.mlp.experts.1.down_proj.weight'")
          && e.getMessage().contains("model.safetensors"), e.getMessage());
    }
    // no experts at all
    try (Checkpoint c = write("noexp", new SafeTensorsWriter()
        .addFloats(p + "gate.weight", DType.F32, new long[] {E, H}, src.router))) {
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(c, qwen3(), 0));
      assertTrue(e.getMessage().contains("experts.0.gate_proj.weight") && e.getMessage().contains("experts.gate_up_proj"),
          e.getMessage());
    }
    // an integer dtype where a weight belongs
    try (Checkpoint c = write("i32", new SafeTensorsWriter()
        .add(p + "gate.weight", DType.I32, new long[] {E, H}, new byte[4 * E * H]))) {
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> MoeBlockWeights.load(c, qwen3(), 0));
      assertTrue(e.getMessage().contains("dtype I32 is not supported"), e.getMessage());
    }
  }

  @Test
  void checksWeightTensorArguments() {
    ByteBuffer four = ByteBuffer.allocate(4);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> WeightTensor.dense("w", Format.F32, 2, 1, four));
    assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("8 bytes, got 4"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> WeightTensor.mxfp4("m", 1, 16, ByteBuffer.allocate(8),
        ByteBuffer.allocate(1)));
    assertThrows(IllegalArgumentException.class, () -> WeightTensor.nvfp4("n", 1, 16, ByteBuffer.allocate(8),
        ByteBuffer.allocate(1), 0f, Float.NaN));
    assertThrows(IllegalArgumentException.class, () -> WeightTensor.fp8Block("f", 2, 2, ByteBuffer.allocate(4),
        ByteBuffer.allocate(4), DType.BF16, 128, 128));
    WeightTensor ok = WeightTensor.fp8Block("f", 200, 130, ByteBuffer.allocate(200 * 130), ByteBuffer.allocate(2 * 2 * 4),
        DType.F32, 128, 128);
    assertEquals(2, ok.scaleRows());
    assertEquals(2, ok.scaleCols());
  }
}
