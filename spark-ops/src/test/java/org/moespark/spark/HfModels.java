package org.moespark.spark;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;

/**
 * Real tiny Hugging Face checkpoints for the tests: the hf-ref fixtures of gpu-kernels' test jar
 * ({@code hf-ref/<case>/config.json + model.safetensors}), copied to a local directory (works whether the
 * test jar is a directory or a jar on the class path).
 */
final class HfModels {
  private static final Map<String, Path> COPIES = new HashMap<>();

  private HfModels() {}

  /** A local copy of fixture {@code name} (e.g. {@code qwen2_moe_fp32}), made once per JVM. */
  static synchronized Path fixture(String name) {
    Path p = COPIES.get(name);
    if (p == null) {
      p = SparkTestSession.tmp().resolve("hf-" + name);
      try {
        Files.createDirectories(p);
        for (String f : new String[] {"config.json", "model.safetensors"}) {
          String res = "hf-ref/" + name + "/" + f;
          try (InputStream in = HfModels.class.getClassLoader().getResourceAsStream(res)) {
            if (in == null) {
              throw new IllegalStateException("test resource " + res + " not on the class path (gpu-kernels test jar)");
            }
            Files.copy(in, p.resolve(f), StandardCopyOption.REPLACE_EXISTING);
          }
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      COPIES.put(name, p);
    }
    return p;
  }
}
