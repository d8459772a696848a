package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;

/** Model URIs: local paths, file: URIs, and the Hadoop FileSystem path (exercised through file://). */
class ModelResolverTest {
  @Test
  void schemes() {
    assertTrue(ModelResolver.isRemote("hdfs://nn:8020/models/m"));
    assertTrue(ModelResolver.isRemote("s3a://bucket/m"));
    assertFalse(ModelResolver.isRemote("/models/m"));
    assertFalse(ModelResolver.isRemote("file:/models/m"));
    assertFalse(ModelResolver.isRemote("C:\\models\\m"));
    assertFalse(ModelResolver.isRemote("relative/dir"));
  }

  @Test
  void localPathsAndErrors() {
    Path m = HfModels.fixture("mixtral_fp32");
    assertEquals(m.toAbsolutePath(), ModelResolver.resolve(m.toString(), null));
    assertEquals(m, ModelResolver.resolve(m.toUri().toString(), null));
    Path missing = m.resolveSibling("absent-model");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ModelResolver.resolve(missing.toString(), null));
    assertTrue(e.getMessage().contains("model path '" + missing + "' does not exist"), e.getMessage());
    IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
        () -> ModelResolver.resolve(missing.toUri().toString(), null));
    assertTrue(e2.getMessage().contains("does not exist"), e2.getMessage());
    assertThrows(IllegalArgumentException.class, () -> ModelResolver.resolve(" ", null));
    assertThrows(IllegalArgumentException.class, () -> ModelResolver.resolve(null, null));
  }

  @Test
  void hadoopFileSystemCopyAndDriverCheck() throws Exception {
    Path m = HfModels.fixture("mixtral_fp32");
    String uri = "file://" + m.toAbsolutePath();
    Configuration conf = new Configuration();
    Path copy = ModelResolver.copyRemote(uri, conf);
    assertNotEquals(m.toAbsolutePath(), copy.toAbsolutePath());
    for (String f : new String[] {"config.json", "model.safetensors"}) {
      assertArrayEquals(Files.readAllBytes(m.resolve(f)), Files.readAllBytes(copy.resolve(f)), f);
    }
    ModelResolver.checkRemote(uri, 0, conf);
    IllegalArgumentException range = assertThrows(IllegalArgumentException.class,
        () -> ModelResolver.checkRemote(uri, 3, conf));
    assertTrue(range.getMessage().contains("layer 3 out of range"), range.getMessage());
    IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
        () -> ModelResolver.checkRemote(uri + "-absent", 0, conf));
    assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());
    IllegalArgumentException file = assertThrows(IllegalArgumentException.class,
        () -> ModelResolver.checkRemote(uri + "/config.json", 0, conf));
    assertTrue(file.getMessage().contains("is not a directory"), file.getMessage());
  }
}
