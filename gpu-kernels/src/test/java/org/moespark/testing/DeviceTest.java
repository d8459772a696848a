package org.moespark.testing;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestInfo;
import org.moespark.cuda.CudaStream;
import org.moespark.cuda.DeviceAllocator;
import org.moespark.cuda.NativeLibrary;

/**
 * Base of the GPU test classes: one CUDA stream and one device allocator (named after the test class) for all the
 * tests of a class, skipped where there is no GPU backend. Closing the allocator after the class fails the run when a
 * test leaked a buffer. Test classes run one after another (the default), so the two fields are the running class's.
 */
@Tag("gpu")
public abstract class DeviceTest {
  protected static CudaStream stream;
  protected static DeviceAllocator alloc;

  @BeforeAll
  static void openDevice(TestInfo info) {
    assumeTrue(NativeLibrary.isAvailable(), () -> "GPU backend " + NativeLibrary.describe());
    stream = CudaStream.create();
    alloc = new DeviceAllocator(info.getTestClass().map(Class::getSimpleName).orElse("DeviceTest"), stream);
  }

  @AfterAll
  static void closeDevice() {
    if (alloc != null) {
      try {
        alloc.close(); // fails the run on a leaked buffer
      } finally {
        stream.close();
        alloc = null;
        stream = null;
      }
    }
  }
}
