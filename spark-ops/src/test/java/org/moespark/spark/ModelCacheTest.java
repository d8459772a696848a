package org.moespark.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Backend choice of {@link ModelCache} with the GPU's availability forced: TestLoader's scorer runs on the
 * CPU only (it throws UnsupportedOperationException for GPU, as MoeLayer does while its GPU backend is
 * missing).
 */
class ModelCacheTest {
  static MoeConf.Settings settings(MoeBackend b) {
    return new MoeConf.Settings(b, 16, BadRowPolicy.ERROR, "fp32", null, TestLoader.class.getName());
  }

  static String model(String name) {
    Path m = TestLoader.write(SparkTestSession.tmp().resolve(name), 3, 4, 2, 5, false);
    return m.toString();
  }

  @Test
  void autoFallsBackToCpuAndRemembersThatGpuIsUnsupported() {
    String uri = model("cache-auto");
    int before = TestLoader.LOADS.get();
    ModelCache.Loaded a = ModelCache.get(uri, 0, settings(MoeBackend.AUTO), 0, true);
    assertEquals("cpu", a.scorer().backend());
    assertEquals(2, TestLoader.LOADS.get() - before, "one GPU attempt, one CPU load");
    ModelCache.Loaded b = ModelCache.get(uri, 0, settings(MoeBackend.AUTO), 0, true);
    assertSame(a.scorer(), b.scorer());
    assertEquals(0, b.loadNanos());
    assertEquals(2, TestLoader.LOADS.get() - before, "neither the GPU attempt nor the CPU load is repeated");
    assertSame(a.scorer(), ModelCache.get(uri, 0, settings(MoeBackend.CPU), -1, true).scorer(), "same CPU entry");
    assertSame(a.scorer(), ModelCache.get(uri, 0, settings(MoeBackend.AUTO), -1, false).scorer(), "no GPU: CPU");
  }

  @Test
  void gpuFailsClearly() {
    String uri = model("cache-gpu");
    IllegalStateException none = assertThrows(IllegalStateException.class,
        () -> ModelCache.get(uri, 0, settings(MoeBackend.GPU), 0, false));
    assertTrue(none.getMessage().startsWith(MoeConf.BACKEND + "=gpu but no GPU is usable in this executor: "),
        none.getMessage());
    IllegalStateException unsupported = assertThrows(IllegalStateException.class,
        () -> ModelCache.get(uri, 0, settings(MoeBackend.GPU), 1, true));
    assertTrue(unsupported.getMessage().contains("=gpu but the model cannot run on GPU 1: the test scorer runs on "
        + "the CPU only"), unsupported.getMessage());
    assertInstanceOf(UnsupportedOperationException.class, unsupported.getCause());
  }
}
