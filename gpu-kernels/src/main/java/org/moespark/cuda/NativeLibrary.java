package org.moespark.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.logging.Logger;

/**
 * The one class that loads {@code libmoespark.so}: the copy bundled in the gpu-kernels jar, or the
 * file named by the system property {@value #PATH_PROPERTY}. Loading never throws: when there is no
 * library, no driver or no GPU, {@link #isAvailable()} is false and {@link #unavailableReason()}
 * says why; callers fall back to the CPU backend and log the reason once.
 */
public final class NativeLibrary {
  /** System property: absolute path of a libmoespark.so to load instead of the bundled one. */
  public static final String PATH_PROPERTY = "moespark.native.path";
  /** Resource path of the bundled library inside the gpu-kernels jar. */
  public static final String RESOURCE = "/native/linux-x86_64/libmoespark.so";

  private static final Logger LOG = Logger.getLogger(NativeLibrary.class.getName());
  private static final Status STATUS = load();

  private NativeLibrary() {}

  /** What loading found: whether the library loaded, whether a GPU is usable, and if not why. */
  public record Status(boolean libraryLoaded, boolean gpuUsable, String source, String reason) {}

  /** True when the library is loaded and at least one CUDA device is usable. */
  public static boolean isAvailable() {
    return STATUS.gpuUsable();
  }

  /** True when the library itself loaded (a GPU may still be missing). */
  public static boolean isLibraryLoaded() {
    return STATUS.libraryLoaded();
  }

  /** Why the GPU backend is unavailable; {@code null} when it is available. */
  public static String unavailableReason() {
    return STATUS.gpuUsable() ? null : STATUS.reason();
  }

  public static Status status() {
    return STATUS;
  }

  /** One line for {@code bin/moe version} and logs: "available (...)" or "unavailable: reason". */
  public static String describe() {
    if (!STATUS.gpuUsable()) {
      return "unavailable: " + STATUS.reason();
    }
    return "available (" + Cuda.describeDevices() + "; library " + STATUS.source() + ")";
  }

  /** Throws a clear error when the GPU backend cannot be used; call before any native method. */
  public static void requireAvailable() {
    if (!STATUS.gpuUsable()) {
      throw new IllegalStateException("GPU backend unavailable: " + STATUS.reason());
    }
  }

  private static Status load() {
    String source;
    try {
      String explicit = System.getProperty(PATH_PROPERTY);
      if (explicit != null && !explicit.isBlank()) {
        Path p = Path.of(explicit).toAbsolutePath();
        if (!Files.isRegularFile(p)) {
          return new Status(false, false, p.toString(), "no native library at " + p + " (" + PATH_PROPERTY + ")");
        }
        System.load(p.toString());
        source = p.toString();
      } else {
        try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE)) {
          if (in == null) {
            return new Status(false, false, null,
                "no native library: this build has no " + RESOURCE + " (built without nvcc?)");
          }
          Path tmp = Files.createTempFile("libmoespark", ".so");
          tmp.toFile().deleteOnExit();
          Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
          System.load(tmp.toString());
          source = "bundled";
        }
      }
    } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
      return new Status(false, false, null, "native library failed to load: " + e);
    }
    try {
      String reason = Cuda.probe();
      if (reason != null) {
        return new Status(true, false, source, reason);
      }
      return new Status(true, true, source, null);
    } catch (RuntimeException | UnsatisfiedLinkError e) {
      return new Status(true, false, source, "CUDA probe failed: " + e);
    }
  }

  /** Logs the reason once, for callers that fall back to the CPU backend. */
  public static void logFallbackOnce() {
    if (!STATUS.gpuUsable() && FALLBACK_LOGGED.compareAndSet(false, true)) {
      LOG.info("moespark GPU backend unavailable, using the CPU backend: " + STATUS.reason());
    }
  }

  private static final java.util.concurrent.atomic.AtomicBoolean FALLBACK_LOGGED =
      new java.util.concurrent.atomic.AtomicBoolean();
}
