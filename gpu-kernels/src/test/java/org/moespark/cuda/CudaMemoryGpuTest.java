package org.moespark.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("gpu")
class CudaMemoryGpuTest {
  @BeforeAll
  static void gpu() {
    assumeTrue(NativeLibrary.isAvailable(), () -> "GPU backend " + NativeLibrary.describe());
  }

  @Test
  void roundTripsThroughDeviceAndPinnedMemory() {
    float[] data = new float[1 << 20];
    for (int i = 0; i < data.length; i++) {
      data[i] = i * 0.5f - 7;
    }
    try (CudaStream s = CudaStream.create(); DeviceAllocator a = new DeviceAllocator("test", s);
        PinnedBuffer pin = PinnedBuffer.allocate(4L * data.length)) {
      try (DeviceBuffer d = a.upload(data, "data"); DeviceBuffer e = a.allocate(d.size(), "copy")) {
        e.copyFromDevice(d, 0, 0, d.size(), s);
        e.copyToAsync(pin, 0, 0, e.size(), s);
        s.synchronize();
        float[] back = new float[data.length];
        pin.buffer().asFloatBuffer().get(back);
        assertArrayEquals(data, back);
        assertArrayEquals(data, e.toFloats(data.length));
      }
      assertEquals(0, a.bytesInUse());
    }
  }

  /**
   * uploadAsync's pinned slots are reused while earlier copies may still be queued behind device work: every
   * table arrives intact, across more uploads than slots and a slot that has to grow.
   */
  @Test
  void asynchronousUploadsKeepEveryTableWhenTheSlotsAreReused() {
    int uploads = 3 * StagingRing.SLOTS + 1;
    try (CudaStream s = CudaStream.create(); DeviceAllocator a = new DeviceAllocator("staging", s);
        DeviceBuffer big = a.allocate(1L << 29, "busy source"); DeviceBuffer big2 = a.allocate(1L << 29, "busy copy")) {
      int[][] tables = new int[uploads][];
      DeviceBuffer[] dev = new DeviceBuffer[uploads];
      try {
        big.fill(1, s);
        big2.copyFromDevice(big, 0, 0, big.size(), s); // keeps the stream busy while the host queues the tables
        for (int u = 0; u < uploads; u++) {
          int n = u == 5 ? 10_000 : 1 + 37 * u; // table 5 is larger than a slot's initial 16 KiB
          tables[u] = new int[n];
          for (int i = 0; i < n; i++) {
            tables[u][i] = u * 1_000_003 + i * 7919;
          }
          dev[u] = a.uploadAsync(tables[u], "table " + u);
        }
        for (int u = 0; u < uploads; u++) {
          assertArrayEquals(tables[u], dev[u].toInts(tables[u].length), "table " + u);
        }
        try (DeviceBuffer empty = a.uploadAsync(new int[0], "empty")) {
          assertEquals(0, empty.size());
        }
      } finally {
        for (DeviceBuffer d : dev) {
          if (d != null) {
            d.close();
          }
        }
      }
    }
  }

  @Test
  void timelineReportsEveryStageAfterTheFirstMark() {
    try (CudaStream s = CudaStream.create(); DeviceAllocator a = new DeviceAllocator("timeline", s);
        DeviceBuffer b = a.allocate(1L << 28, "filled"); StreamTimeline t = new StreamTimeline()) {
      t.mark("start", s);
      b.fill(3, s);
      t.mark("fill", s);
      s.synchronize();
      t.mark("sync", s);
      java.util.List<StreamTimeline.Stage> r = t.report();
      assertEquals(java.util.List.of("fill", "sync"), r.stream().map(StreamTimeline.Stage::name).toList());
      assertTrue(r.get(0).deviceMs() > 0, "a 256 MiB memset takes device time: " + r);
      assertTrue(r.get(1).hostMs() >= 0 && r.get(1).deviceMs() >= 0, r.toString());
      t.clear();
      assertTrue(t.report().isEmpty());
    }
  }

  @Test
  void allocatorReportsLeaks() {
    try (CudaStream s = CudaStream.create()) {
      DeviceAllocator a = new DeviceAllocator("leaky", s);
      a.allocate(256, "forgotten buffer");
      IllegalStateException e = assertThrows(IllegalStateException.class, a::close);
      assertTrue(e.getMessage().contains("forgotten buffer"), e.getMessage());
    }
  }

  @Test
  void deviceInfoDescribesTheGpu() {
    Cuda.DeviceInfo info = Cuda.deviceInfo(0);
    assertTrue(info.major() >= 7, info.toString());
    assertTrue(NativeLibrary.describe().contains(info.name()));
  }
}
