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
