package org.moespark.jobs;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import org.moespark.layer.Backend;
import org.moespark.layer.Compute;
import org.moespark.layer.GemmPrecision;
import org.moespark.layer.LayerOptions;
import org.moespark.layer.MoeLayer;
import org.moespark.model.DType;
import org.moespark.model.SafeTensors;
import org.moespark.model.SafeTensorsWriter;
import org.moespark.model.Tensor;

/**
 * {@code moe layer --model DIR --layer N --input IN.safetensors --output OUT.safetensors
 * [--backend cpu|gpu|auto] [--compute fp32|bf16] [--gemm bf16|fp8|mxfp4|nvfp4]}: runs one MoE block of a Hugging Face checkpoint on
 * the tensor {@code x [T, H]} (F32, BF16 or F16) of {@code IN} and writes {@code y [T, H]} F32,
 * {@code topk_ids [T, K]} I32 and {@code topk_weights [T, K]} F32 to {@code OUT}. A missing or
 * malformed {@code x} and bad flags are usage errors (exit 2).
 */
final class LayerCommand implements Main.Command {
  static final String USAGE = "usage: bin/moe layer --model DIR --layer N --input IN.safetensors "
      + "--output OUT.safetensors [--backend cpu|gpu|auto] [--compute fp32|bf16] [--gemm bf16|fp8|mxfp4|nvfp4 (GPU)]";

  @Override
  public String summary() {
    return "run one MoE block of a HF checkpoint on x [T, H] from a safetensors file";
  }

  @Override
  public int run(String[] args, PrintStream out) throws IOException {
    Path model = null;
    Integer layer = null;
    Path input = null;
    Path output = null;
    Backend backend = Backend.AUTO;
    Compute compute = Compute.FP32;
    GemmPrecision gemm = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--help", "-h" -> {
          out.println(USAGE);
          return 0;
        }
        case "--model" -> model = Path.of(BenchCommand.Args.value(args, i++, a, USAGE));
        case "--layer" -> layer = BenchCommand.Args.nonNegativeInt(BenchCommand.Args.value(args, i++, a, USAGE), a);
        case "--input" -> input = Path.of(BenchCommand.Args.value(args, i++, a, USAGE));
        case "--output" -> output = Path.of(BenchCommand.Args.value(args, i++, a, USAGE));
        case "--backend" -> backend = parseBackend(BenchCommand.Args.value(args, i++, a, USAGE));
        case "--compute" -> compute = parseCompute(BenchCommand.Args.value(args, i++, a, USAGE));
        case "--gemm" -> gemm = parseGemm(BenchCommand.Args.value(args, i++, a, USAGE));
        default -> throw new Main.UsageException("unknown option '" + a + "'; " + USAGE);
      }
    }
    if (model == null || layer == null || input == null || output == null) {
      throw new Main.UsageException("missing " + (model == null ? "--model" : layer == null ? "--layer"
          : input == null ? "--input" : "--output") + "; " + USAGE);
    }
    if (!Files.isDirectory(model)) {
      throw new Main.UsageException("--model " + model + " is not a directory");
    }
    if (!Files.isRegularFile(input)) {
      throw new Main.UsageException("--input " + input + " does not exist");
    }

    // read and check x before the (possibly expensive) model load; the width is checked after it
    float[] x;
    int tokens;
    long width;
    try (SafeTensors in = SafeTensors.open(input)) {
      if (!in.contains("x")) {
        throw new Main.UsageException("--input " + input + " has no tensor 'x' (it has: "
            + String.join(", ", in.names()) + ")");
      }
      Tensor t = in.tensor("x");
      if (t.dtype() != DType.F32 && t.dtype() != DType.BF16 && t.dtype() != DType.F16) {
        throw new Main.UsageException("--input tensor 'x' must be F32, BF16 or F16, got " + t.dtype());
      }
      if (t.rank() != 2) {
        throw new Main.UsageException("--input tensor 'x' must be [tokens, hidden] (rank 2), got shape "
            + Arrays.toString(t.shape()));
      }
      if (t.numel() > Integer.MAX_VALUE - 8) {
        throw new Main.UsageException("--input tensor 'x' " + Arrays.toString(t.shape())
            + " is too large for one batch; split it");
      }
      tokens = (int) t.dim(0);
      width = t.dim(1);
      x = t.toFloatArray();
    }

    long t0 = System.nanoTime();
    try (MoeLayer moe = MoeLayer.load(model, layer, new LayerOptions(backend, compute, gemm))) {
      long t1 = System.nanoTime();
      int h = moe.hiddenSize();
      if (width != h) {
        throw new Main.UsageException("--input tensor 'x' must be [tokens, " + h + "]: width " + width
            + " does not match the model's hidden size " + h);
      }
      long t2 = System.nanoTime();
      MoeLayer.Output o = moe.forward(x, tokens);
      long t3 = System.nanoTime();
      int k = o.topK();
      ByteBuffer ids = ByteBuffer.allocate(4 * o.topkIds().length).order(ByteOrder.LITTLE_ENDIAN);
      ids.asIntBuffer().put(o.topkIds());
      new SafeTensorsWriter()
          .metadata("format", "pt")
          .addFloats("y", DType.F32, new long[] {tokens, h}, o.y())
          .add("topk_ids", DType.I32, new long[] {tokens, k}, ids)
          .addFloats("topk_weights", DType.F32, new long[] {tokens, k}, o.topkWeights())
          .write(output);
      out.printf("layer %d of %s (H %d, %d experts, top-%d): %d tokens on %s (%s): load %.0f ms, forward %.1f ms → %s%n",
          layer, moe.modelType(), h, moe.numExperts(), k, tokens, moe.backend(), compute.name().toLowerCase(Locale.ROOT),
          (t1 - t0) / 1e6, (t3 - t2) / 1e6, output);
    }
    return 0;
  }

  static Backend parseBackend(String v) {
    return switch (BenchCommand.Args.lower(v)) {
      case "cpu" -> Backend.CPU;
      case "gpu" -> Backend.GPU;
      case "auto" -> Backend.AUTO;
      default -> throw new Main.UsageException("--backend must be cpu, gpu or auto, got '" + v + "'");
    };
  }

  static GemmPrecision parseGemm(String v) {
    try {
      return GemmPrecision.parse(v, "--gemm");
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException(e.getMessage());
    }
  }

  static Compute parseCompute(String v) {
    return switch (BenchCommand.Args.lower(v)) {
      case "fp32" -> Compute.FP32;
      case "bf16" -> Compute.BF16;
      default -> throw new Main.UsageException("--compute must be fp32 or bf16, got '" + v + "'");
    };
  }
}
