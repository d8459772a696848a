package org.moespark.spark;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * {@link ScorerLoader} for tests: a model directory holds only a {@code config.json} with
 * {@code hidden_size, num_hidden_layers, num_local_experts, num_experts_per_tok, seed} (and optionally
 * {@code "fail_load": true}, which passes the driver check but fails on the executors, and
 * {@code "host_staging": true}, which runs the scorer through the operator's staged path, {@link HostStaging}).
 */
public final class TestLoader implements ScorerLoader {
  static final AtomicInteger LOADS = new AtomicInteger();
  /** The options of the latest load (what the operator passed down). */
  static final java.util.concurrent.atomic.AtomicReference<Options> LAST = new java.util.concurrent.atomic.AtomicReference<>();

  @Override
  public void validate(Path modelDir, int layer) {
    JsonNode cfg = ModelChecks.checkConfig(modelDir, layer);
    for (String k : new String[] {"num_local_experts", "num_experts_per_tok", "seed"}) {
      if (!cfg.has(k)) {
        throw new IllegalArgumentException("test model " + modelDir + ": config.json has no " + k);
      }
    }
  }

  @Override
  public BatchScorer load(Path modelDir, int layer, Options options) {
    LOADS.incrementAndGet();
    LAST.set(options);
    JsonNode cfg = ModelChecks.checkConfig(modelDir, layer);
    if (cfg.path("fail_load").asBoolean(false)) {
      throw new IllegalStateException("test model " + modelDir + ": weights are corrupt (fail_load)");
    }
    if (options.backend() != MoeBackend.CPU) {
      throw new UnsupportedOperationException("the test scorer runs on the CPU only");
    }
    TestScorer s = scorer(cfg, layer);
    return cfg.path("host_staging").asBoolean(false) ? s.hostStaged() : s;
  }

  static TestScorer scorer(JsonNode cfg, int layer) {
    return new TestScorer(cfg.get("hidden_size").asInt(), cfg.get("num_local_experts").asInt(),
        cfg.get("num_experts_per_tok").asInt(), cfg.get("seed").asLong(), layer);
  }

  /** Writes a test model directory and returns the scorer for {@code layer} of it (the reference). */
  static Path write(Path dir, int hidden, int experts, int topK, long seed, boolean failLoad) {
    return write(dir, hidden, experts, topK, seed, failLoad, false);
  }

  /** {@link #write}, with {@code "host_staging": hostStaging}. */
  static Path write(Path dir, int hidden, int experts, int topK, long seed, boolean failLoad, boolean hostStaging) {
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("config.json"), "{\"model_type\":\"test-moe\",\"hidden_size\":" + hidden
          + ",\"num_hidden_layers\":2,\"num_local_experts\":" + experts + ",\"num_experts_per_tok\":" + topK
          + ",\"seed\":" + seed + (failLoad ? ",\"fail_load\":true" : "") + (hostStaging ? ",\"host_staging\":true" : "")
          + "}");
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static TestScorer reference(Path dir, int layer) {
    return scorer(ModelChecks.checkConfig(dir, layer), layer);
  }
}
