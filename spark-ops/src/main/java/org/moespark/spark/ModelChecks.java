package org.moespark.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Cheap checks of a Hugging Face model directory, run on the driver before any task starts: the
 * directory exists, {@code config.json} parses and is consistent with the requested layer, and the
 * weights file (or the sharded index) is present. Weights themselves are not read.
 */
public final class ModelChecks {
  private static final ObjectMapper JSON = new ObjectMapper();

  private ModelChecks() {}

  /** Config check plus presence of {@code model.safetensors} or {@code model.safetensors.index.json}. */
  public static void checkHfModelDir(Path dir, int layer) {
    checkConfig(dir, layer);
    if (!Files.isRegularFile(dir.resolve("model.safetensors"))
        && !Files.isRegularFile(dir.resolve("model.safetensors.index.json"))) {
      throw new IllegalArgumentException("model " + dir + ": no weights (expected model.safetensors or "
          + "model.safetensors.index.json)");
    }
  }

  /**
   * Checks {@code dir/config.json}: a JSON object with a positive integer {@code hidden_size}; when it
   * has {@code num_hidden_layers}, {@code layer} must be below it.
   *
   * @return the parsed config
   */
  public static JsonNode checkConfig(Path dir, int layer) {
    if (dir == null) {
      throw new IllegalArgumentException("model directory must not be null");
    }
    if (!Files.isDirectory(dir)) {
      throw new IllegalArgumentException("model " + dir + ": not a directory");
    }
    if (layer < 0) {
      throw new IllegalArgumentException("model " + dir + ": layer must be >= 0, got " + layer);
    }
    Path cfg = dir.resolve("config.json");
    if (!Files.isRegularFile(cfg)) {
      throw new IllegalArgumentException("model " + dir + ": no config.json");
    }
    JsonNode root;
    try {
      root = JSON.readTree(Files.readAllBytes(cfg));
    } catch (IOException e) {
      throw new IllegalArgumentException("model " + dir + ": config.json does not parse: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("model " + dir + ": config.json is not a JSON object");
    }
    JsonNode text = root.has("text_config") && root.get("text_config").isObject() ? root.get("text_config") : root;
    JsonNode hidden = text.get("hidden_size");
    if (hidden == null || !hidden.canConvertToInt() || hidden.asInt() <= 0) {
      throw new IllegalArgumentException("model " + dir + ": config.json hidden_size must be a positive integer, got "
          + hidden);
    }
    JsonNode layers = text.get("num_hidden_layers");
    if (layers != null && layers.canConvertToInt() && layer >= layers.asInt()) {
      throw new IllegalArgumentException("model " + dir + ": layer " + layer + " out of range [0, "
          + layers.asInt() + ") (config.json num_hidden_layers)");
    }
    return root;
  }
}
