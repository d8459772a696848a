package org.moespark.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class NativeLibraryTest {
  @Test
  void statusIsConsistentAndNeverThrows() {
    NativeLibrary.Status s = NativeLibrary.status();
    if (s.gpuUsable()) {
      assertTrue(s.libraryLoaded());
      assertNull(NativeLibrary.unavailableReason());
      assertTrue(NativeLibrary.describe().startsWith("available ("), NativeLibrary.describe());
    } else {
      assertNotNull(s.reason());
      assertFalse(s.reason().isBlank());
      assertEquals("unavailable: " + s.reason(), NativeLibrary.describe());
      IllegalStateException e = assertThrows(IllegalStateException.class, NativeLibrary::requireAvailable);
      assertTrue(e.getMessage().contains(s.reason()), e.getMessage());
    }
  }

  /** Where the build bundled the library (nvcc present, as in CI), it must load even without a GPU. */
  @Test
  void bundledLibraryLoadsWhenPresent() {
    boolean bundled = NativeLibrary.class.getResource(NativeLibrary.RESOURCE) != null;
    if (bundled && System.getProperty(NativeLibrary.PATH_PROPERTY) == null) {
      assertTrue(NativeLibrary.isLibraryLoaded(), "bundled library did not load: " + NativeLibrary.status());
    } else if (!bundled) {
      assertFalse(NativeLibrary.isLibraryLoaded());
      assertTrue(NativeLibrary.unavailableReason().contains("no native library"), NativeLibrary.unavailableReason());
    }
  }
}
