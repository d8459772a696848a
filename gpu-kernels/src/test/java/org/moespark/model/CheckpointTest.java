package org.moespark.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
  @TempDir
  Path dir;

  private static void assertMessage(Exception e, String... fragments) {
    for (String f : fragments) {
      assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
    }
  }

  @Test
  void singleFileDirectory() throws IOException {
    new SafeTensorsWriter().addFloats("b.weight", DType.F32, new long[] {2}, new float[] {1, 2})
        .addFloats("a.weight", DType.F32, new long[] {1}, new float[] {3}).write(dir.resolve("model.safetensors"));
    try (Checkpoint c = Checkpoint.open(dir)) {
      assertFalse(c.isSharded());
      assertEquals(List.of("a.weight", "b.weight"), c.names());
      assertEquals(List.of(dir.resolve("model.safetensors")), c.files());
      assertArrayEquals(new float[] {1, 2}, c.tensor("b.weight").toFloatArray());
      assertTrue(c.find("nope").isEmpty());
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> c.tensor("nope"));
      assertMessage(e, "'nope'", "model.safetensors");
    }
    try (Checkpoint c = Checkpoint.open(dir.resolve("model.safetensors"))) {
      assertEquals(2, c.names().size(), "a file given directly");
    }
  }

  @Test
  void shardedDirectoryWithIndex() throws IOException {
    new SafeTensorsWriter().addFloats("layer.0.down", DType.F32, new long[] {1}, new float[] {5})
        .write(dir.resolve("model-00001-of-00002.safetensors"));
    new SafeTensorsWriter().addFloats("layer.0.gate", DType.F32, new long[] {2}, new float[] {6, 7})
        .addFloats("layer.0.up", DType.F32, new long[] {1}, new float[] {8})
        .write(dir.resolve("model-00002-of-00002.safetensors"));
    Map<String, String> wm = new TreeMap<>();
    wm.put("layer.0.down", "model-00001-of-00002.safetensors");
    wm.put("layer.0.gate", "model-00002-of-00002.safetensors");
    wm.put("layer.0.up", "model-00002-of-00002.safetensors");
    Checkpoint.writeIndex(dir, wm, 16);
    String index = Files.readString(dir.resolve(Checkpoint.INDEX_FILE));
    assertTrue(index.contains("\"total_size\": 16"), index);
    try (Checkpoint c = Checkpoint.open(dir)) {
      assertTrue(c.isSharded());
      assertEquals(List.of("layer.0.down", "layer.0.gate", "layer.0.up"), c.names());
      assertEquals(2, c.files().size());
      assertArrayEquals(new float[] {5}, c.tensor("layer.0.down").toFloatArray());
      assertArrayEquals(new float[] {6, 7}, c.tensor("layer.0.gate").toFloatArray());
      assertArrayEquals(new float[] {8}, c.tensor("layer.0.up").toFloatArray());
      SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> c.tensor("layer.0.w9"));
      assertMessage(e, "'layer.0.w9'", Checkpoint.INDEX_FILE, "model-00001-of-00002.safetensors",
          "model-00002-of-00002.safetensors");
    }
  }

  private Path index(String name, String json) throws IOException {
    Path d = Files.createDirectories(dir.resolve(name));
    Files.write(d.resolve(Checkpoint.INDEX_FILE), json.getBytes(StandardCharsets.UTF_8));
    return d;
  }

  @Test
  void rejectsBadIndexes() throws IOException {
    Path traversal = index("trav", "{\"weight_map\": {\"a\": \"../model.safetensors\"}}");
    assertMessage(assertThrows(SafeTensorsException.class, () -> Checkpoint.open(traversal)), "'a'",
        "../model.safetensors", "not a plain file name");
    Path noMap = index("nomap", "{\"metadata\": {}}");
    assertMessage(assertThrows(SafeTensorsException.class, () -> Checkpoint.open(noMap)), "weight_map");
    Path badJson = index("badjson", "{\"weight_map\": {");
    assertMessage(assertThrows(SafeTensorsException.class, () -> Checkpoint.open(badJson)), "not valid JSON");
    Path notString = index("nstr", "{\"weight_map\": {\"a\": 3}}");
    assertMessage(assertThrows(SafeTensorsException.class, () -> Checkpoint.open(notString)), "'a'", "file name string");

    Path missingShard = index("miss", "{\"weight_map\": {\"a\": \"model-00001-of-00001.safetensors\"}}");
    try (Checkpoint c = Checkpoint.open(missingShard)) {
      assertMessage(assertThrows(SafeTensorsException.class, () -> c.tensor("a")), "model-00001-of-00001.safetensors",
          "does not exist");
    }
    Path wrongShard = index("wrong", "{\"weight_map\": {\"a\": \"s.safetensors\", \"b\": \"s.safetensors\"}}");
    new SafeTensorsWriter().addFloats("a", DType.F32, new long[] {1}, new float[] {1})
        .write(wrongShard.resolve("s.safetensors"));
    try (Checkpoint c = Checkpoint.open(wrongShard)) {
      assertEquals(1f, c.tensor("a").toFloatArray()[0]);
      assertMessage(assertThrows(SafeTensorsException.class, () -> c.tensor("b")), "'b'", "s.safetensors",
          "has no such tensor");
    }
  }

  @Test
  void rejectsDirectoriesWithoutWeights() throws IOException {
    Path d = Files.createDirectories(dir.resolve("empty"));
    Files.writeString(d.resolve("config.json"), "{}");
    assertMessage(assertThrows(SafeTensorsException.class, () -> Checkpoint.open(d)), Checkpoint.INDEX_FILE,
        Checkpoint.SINGLE_FILE, "config.json");
    assertThrows(SafeTensorsException.class, () -> Checkpoint.open(dir.resolve("does-not-exist")));
  }
}
