package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.moespark.cuda.NativeLibrary;

/** {@code bin/moe bench}: argument handling and the no-GPU path of {@code bench ops}. */
class BenchCommandTest {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) {
    return Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private String stdout() {
    return out.toString(StandardCharsets.UTF_8);
  }

  private String stderr() {
    return err.toString(StandardCharsets.UTF_8);
  }

  @Test
  void helpNamesBothBenchmarks() {
    assertEquals(0, run("bench", "--help"));
    assertTrue(stdout().contains("bin/moe bench layer"), stdout());
    assertTrue(stdout().contains("bin/moe bench ops [--backend gpu] [--tokens N] [--iters N] [--torch FILE]"),
        stdout());
    assertEquals(0, run("bench", "ops", "--help"));
  }

  @Test
  void unknownBenchListsTheKnownOnes() {
    assertEquals(2, run("bench", "frob"));
    assertTrue(stderr().contains("unknown bench 'frob' (known: layer, ops)"), stderr());
  }

  @Test
  void opsIsGpuOnly() {
    assertEquals(2, run("bench", "ops", "--backend", "cpu"));
    assertTrue(stderr().contains("--backend must be gpu, got 'cpu'"), stderr());
  }

  @Test
  void opsOptionsAreChecked(@TempDir Path dir) throws Exception {
    assertEquals(2, run("bench", "ops", "--tokens", "0"));
    assertTrue(stderr().contains("--tokens must be a positive integer, got 0"), stderr());
    assertEquals(2, run("bench", "ops", "--iters"));
    assertTrue(stderr().contains("--iters needs a value"), stderr());
    Path missing = dir.resolve("nope.txt");
    assertEquals(2, run("bench", "ops", "--torch", missing.toString()));
    assertTrue(stderr().contains("--torch: no such file '" + missing + "'"), stderr());
    assertEquals(2, run("bench", "ops", "--frob"));
    assertTrue(stderr().contains("unknown option '--frob'"), stderr());
  }

  @Test
  void opsWithoutGpuSaysWhyAndFails(@TempDir Path dir) throws Exception {
    assumeFalse(NativeLibrary.isAvailable(), "a GPU is present");
    Path torch = Files.writeString(dir.resolve("torch.txt"), "mixtral.gather_us 10.0\n");
    assertEquals(1, run("bench", "ops", "--backend", "gpu", "--tokens", "128", "--torch", torch.toString()));
    assertTrue(stdout().contains("bench ops: GPU backend unavailable"), stdout());
  }
}
