package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moespark.cuda.NativeLibrary;
import org.moespark.layer.Backend;
import org.moespark.layer.Compute;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.model.DType;
import org.moespark.model.SafeTensors;
import org.moespark.model.SafeTensorsWriter;
import org.moespark.model.Tensor;

/** {@code moe layer} through files, and its usage errors; {@code moe bench} argument handling. */
class LayerCommandTest {
  static final Path FIXTURES = Path.of("../gpu-kernels/src/test/resources/hf-ref");

  @TempDir Path tmp;
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) {
    return Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private String err() {
    return err.toString(StandardCharsets.UTF_8);
  }

  private static float[] floats(SafeTensors f, String name, long... shape) {
    Tensor t = f.tensor(name);
    assertEquals(DType.F32, t.dtype(), name + " dtype");
    assertArrayEquals(shape, t.shape(), name + " shape");
    return t.toFloatArray();
  }

  private static void assertBits(float[] expected, float[] actual, String what) {
    assertEquals(expected.length, actual.length, what + " length");
    for (int i = 0; i < expected.length; i++) {
      assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual[i]),
          what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i]);
    }
  }

  @Test
  void roundTripThroughFilesMatchesTheApiAndTransformers() throws Exception {
    Path model = FIXTURES.resolve("mixtral_fp32");
    Path outFile = tmp.resolve("out.safetensors");
    int rc = run("layer", "--model", model.toString(), "--layer", "0", "--input",
        model.resolve("ref.safetensors").toString(), "--output", outFile.toString(), "--backend", "cpu");
    assertEquals(0, rc, err());
    assertTrue(out.toString(StandardCharsets.UTF_8).contains("37 tokens on cpu (fp32)"), out.toString());
    float[] x;
    float[] yRef;
    try (SafeTensors ref = SafeTensors.open(model.resolve("ref.safetensors"))) {
      x = ref.tensor("x").toFloatArray();
      yRef = ref.tensor("y").toFloatArray();
    }
    MoeLayer.Output api = MoeLayer.load(model, 0, LayerOptions.defaults()).forward(x, 37);
    try (SafeTensors o = SafeTensors.open(outFile)) {
      float[] y = floats(o, "y", 37, 32);
      assertBits(api.y(), y, "y");
      Tensor ids = o.tensor("topk_ids");
      assertEquals(DType.I32, ids.dtype());
      assertArrayEquals(new long[] {37, 2}, ids.shape());
      int[] got = new int[74];
      ids.data().asIntBuffer().get(got);
      assertArrayEquals(api.topkIds(), got, "topk_ids");
      assertBits(api.topkWeights(), floats(o, "topk_weights", 37, 2), "topk_weights");
      // and against transformers' y (fp32 tolerance 1e-5, relative L2)
      double num = 0;
      double den = 0;
      for (int i = 0; i < y.length; i++) {
        num += (y[i] - (double) yRef[i]) * (y[i] - (double) yRef[i]);
        den += (double) yRef[i] * yRef[i];
      }
      assertTrue(Math.sqrt(num / den) <= 1e-5, "relative error vs transformers " + Math.sqrt(num / den));
    }
  }

  @Test
  void bf16InputAndBf16Compute() throws Exception {
    Path model = FIXTURES.resolve("qwen2_moe_bf16");
    float[] x = new float[5 * 32];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) Math.sin(i * 0.37); // rounded to bf16 by the writer
    }
    Path in = tmp.resolve("x.safetensors");
    new SafeTensorsWriter().addFloats("x", DType.BF16, new long[] {5, 32}, x).write(in);
    float[] xb;
    try (SafeTensors f = SafeTensors.open(in)) {
      xb = f.tensor("x").toFloatArray();
    }
    Path outFile = tmp.resolve("y.safetensors");
    assertEquals(0, run("layer", "--model", model.toString(), "--layer", "0", "--input", in.toString(), "--output",
        outFile.toString(), "--compute", "BF16"), err());
    MoeLayer.Output api = MoeLayer.load(model, 0, new LayerOptions(Backend.AUTO, Compute.BF16)).forward(xb, 5);
    try (SafeTensors o = SafeTensors.open(outFile)) {
      assertBits(api.y(), floats(o, "y", 5, 32), "y");
    }
  }

  private Path writeInput(String name, long[] shape, DType dtype) throws Exception {
    Path p = tmp.resolve(name + ".safetensors");
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    if (dtype == DType.I32) {
      new SafeTensorsWriter().add(name, dtype, shape, new byte[(int) n * 4]).write(p);
    } else {
      new SafeTensorsWriter().addFloats(name, dtype, shape, new float[(int) n]).write(p);
    }
    return p;
  }

  private int runLayer(Path input, String... extra) {
    String[] base = {"layer", "--model", FIXTURES.resolve("mixtral_fp32").toString(), "--layer", "0", "--input",
        input.toString(), "--output", tmp.resolve("o.safetensors").toString()};
    String[] all = new String[base.length + extra.length];
    System.arraycopy(base, 0, all, 0, base.length);
    System.arraycopy(extra, 0, all, base.length, extra.length);
    return run(all);
  }

  @Test
  void missingXIsAUsageError() throws Exception {
    assertEquals(2, runLayer(writeInput("h", new long[] {2, 32}, DType.F32)));
    assertTrue(err().contains("has no tensor 'x' (it has: h)"), err());
  }

  @Test
  void wrongRankIsAUsageError() throws Exception {
    assertEquals(2, runLayer(writeInput("x", new long[] {64}, DType.F32)));
    assertTrue(err().contains("must be [tokens, hidden] (rank 2), got shape [64]"), err());
  }

  @Test
  void wrongWidthIsAUsageError() throws Exception {
    assertEquals(2, runLayer(writeInput("x", new long[] {4, 16}, DType.F32)));
    assertTrue(err().contains("width 16 does not match the model's hidden size 32"), err());
  }

  @Test
  void wrongDtypeIsAUsageError() throws Exception {
    assertEquals(2, runLayer(writeInput("x", new long[] {4, 32}, DType.I32)));
    assertTrue(err().contains("must be F32, BF16 or F16, got I32"), err());
  }

  @Test
  void badFlagsAreUsageErrors() throws Exception {
    Path in = FIXTURES.resolve("mixtral_fp32/ref.safetensors");
    assertEquals(2, runLayer(in, "--backend", "tpu"));
    assertTrue(err().contains("--backend must be cpu, gpu or auto, got 'tpu'"), err());
    assertEquals(2, runLayer(in, "--compute", "fp8"));
    assertTrue(err().contains("--compute must be fp32 or bf16, got 'fp8'"), err());
    assertEquals(2, runLayer(in, "--gemm", "fp16"));
    assertTrue(err().contains("--gemm must be bf16, fp8, mxfp4 or nvfp4, got 'fp16'"), err());
    assertEquals(0, runLayer(in, "--backend", "cpu", "--gemm", "NVFP4"), err()); // a GPU option the CPU ignores
    assertEquals(2, runLayer(in, "--frobnicate"));
    assertTrue(err().contains("unknown option '--frobnicate'"), err());
    assertEquals(2, run("layer", "--model", FIXTURES.resolve("mixtral_fp32").toString(), "--layer", "0"));
    assertTrue(err().contains("missing --input"), err());
    assertEquals(2, run("layer", "--model", "x", "--layer", "-1", "--input", "i", "--output", "o"));
    assertTrue(err().contains("--layer must be >= 0, got -1"), err());
    assertEquals(2, run("layer", "--model", tmp.resolve("nope").toString(), "--layer", "0", "--input",
        in.toString(), "--output", "o"));
    assertTrue(err().contains("is not a directory"), err());
    assertEquals(2, run("layer", "--model"));
    assertTrue(err().contains("--model needs a value"), err());
  }

  @Test
  void gpuBackendFailsWithTheReason() {
    assumeFalse(NativeLibrary.isAvailable(), "a GPU is usable here");
    assertEquals(1, runLayer(FIXTURES.resolve("mixtral_fp32/ref.safetensors"), "--backend", "gpu"));
    assertTrue(err().contains("backend GPU: the GPU is unavailable: " + NativeLibrary.unavailableReason()), err());
  }

  @Test
  void layerThreeOfAOneLayerModelFails() {
    assertEquals(1, runLayer(FIXTURES.resolve("mixtral_fp32/ref.safetensors"), "--layer", "3"));
    assertTrue(err().contains("layer 3 is outside [0, num_hidden_layers=1)"), err());
  }

  @Test
  void benchArgumentsAreChecked() {
    assertEquals(2, run("bench"));
    assertTrue(err().contains("missing subcommand (known: layer, ops)"), err());
    assertEquals(2, run("bench", "gemm"));
    assertTrue(err().contains("unknown bench 'gemm'"), err());
    assertEquals(2, run("bench", "layer", "--tokens", "0"));
    assertTrue(err().contains("--tokens must be a positive integer, got 0"), err());
    if (!NativeLibrary.isAvailable()) {
      assertEquals(1, run("bench", "layer", "--backend", "gpu"));
      assertTrue(out.toString(StandardCharsets.UTF_8).contains("bench layer --backend gpu: GPU backend unavailable"),
          out.toString(StandardCharsets.UTF_8));
    }
    assertEquals(0, run("bench", "layer", "--help"));
    assertTrue(out.toString(StandardCharsets.UTF_8).contains("usage: bin/moe bench layer"));
  }

  @Test
  void helpListsLayerAndBench() {
    assertEquals(0, run("--help"));
    String s = out.toString(StandardCharsets.UTF_8);
    assertTrue(s.contains("layer") && s.contains("bench"), s);
  }
}
