package org.moespark.jobs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.moespark.cuda.NativeLibrary;

class MainTest {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) {
    return Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  @Test
  void helpListsCommands() {
    assertEquals(0, run("--help"));
    String s = out.toString(StandardCharsets.UTF_8);
    assertTrue(s.contains("usage: bin/moe"), s);
    for (String c : new String[] {"version", "gen", "score", "stats", "demo", "layer", "bench"}) {
      assertTrue(s.contains("\n  " + c + " "), c + " missing in --help:\n" + s);
    }
  }

  @Test
  void versionReportsSparkAndBackend() {
    assertEquals(0, run("version"));
    String s = out.toString(StandardCharsets.UTF_8);
    assertTrue(s.contains("spark       4.2.0"), s);
    assertTrue(s.contains("scala       2.13."), s);
    assertTrue(s.contains("gpu backend " + NativeLibrary.describe()), s);
  }

  @Test
  void unknownCommandIsAUsageError() {
    assertEquals(2, run("frobnicate"));
    assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown command 'frobnicate'"));
  }

  @Test
  void noArgumentsPrintsUsageAndFails() {
    assertEquals(2, run());
    assertTrue(out.toString(StandardCharsets.UTF_8).contains("commands:"));
  }
}
