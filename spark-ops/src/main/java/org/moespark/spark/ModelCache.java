package org.moespark.spark;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.moespark.cuda.NativeLibrary;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One loaded layer per (loader, model URI, layer, backend, device, compute) and JVM: every task of an
 * executor shares it. A load that fails is remembered too, so the other tasks of that executor (and
 * retries) fail at once with the same message instead of each re-reading the checkpoint; so is a backend
 * the layer does not support (with {@code auto} every task then goes straight to the CPU entry).
 */
public final class ModelCache {
  private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);
  private static final Map<Key, Entry> CACHE = new ConcurrentHashMap<>();
  private static final AtomicBoolean FALLBACK_LOGGED = new AtomicBoolean();

  private ModelCache() {}

  private record Key(String loader, String uri, int layer, MoeBackend backend, int device, String compute,
      String gemm) {}

  private record Entry(BatchScorer scorer, RuntimeException failure, long loadNanos) {}

  /** A scorer from the cache; {@code loadNanos} is 0 when this call did not load it. */
  public record Loaded(BatchScorer scorer, long loadNanos) {}

  /**
   * The scorer for one {@code moe_score} call on this executor.
   *
   * @param taskGpu the CUDA device of the task's {@code gpu} resource, or -1 when the task has none
   */
  public static Loaded get(String uri, int layer, MoeConf.Settings s, int taskGpu) {
    return get(uri, layer, s, taskGpu, NativeLibrary.isAvailable());
  }

  /** {@link #get(String, int, MoeConf.Settings, int)} with the CUDA library's availability given (tests). */
  static Loaded get(String uri, int layer, MoeConf.Settings s, int taskGpu, boolean gpuUsable) {
    MoeBackend wanted = s.backend();
    if (wanted == MoeBackend.GPU && !gpuUsable) {
      throw new IllegalStateException(MoeConf.BACKEND + "=gpu but no GPU is usable in this executor: "
          + NativeLibrary.unavailableReason() + " (use auto or cpu to run on the CPU)");
    }
    if (wanted == MoeBackend.AUTO && !gpuUsable) {
      logFallback("GPU backend unavailable: " + NativeLibrary.unavailableReason());
    }
    int device = taskGpu >= 0 ? taskGpu : 0;
    if (wanted == MoeBackend.CPU || !gpuUsable) {
      return load(new Key(s.loader(), uri, layer, MoeBackend.CPU, -1, s.compute(), s.gemm()));
    }
    try {
      return load(new Key(s.loader(), uri, layer, MoeBackend.GPU, device, s.compute(), s.gemm()));
    } catch (UnsupportedOperationException e) {
      if (wanted == MoeBackend.GPU) {
        throw new IllegalStateException(MoeConf.BACKEND + "=gpu but the model cannot run on GPU " + device + ": "
            + e.getMessage(), e);
      }
      logFallback("GPU load of " + uri + " not supported: " + e.getMessage());
      return load(new Key(s.loader(), uri, layer, MoeBackend.CPU, -1, s.compute(), s.gemm()));
    }
  }

  /** Drops every cached layer (tests; a long-lived executor that must reload a changed model). */
  public static void clear() {
    CACHE.clear();
  }

  private static Loaded load(Key k) {
    boolean[] loadedHere = {false};
    Entry e = CACHE.computeIfAbsent(k, key -> {
      loadedHere[0] = true;
      long t0 = System.nanoTime();
      try {
        ScorerLoader loader = MoeConf.newLoader(key.loader());
        Path dir = ModelResolver.resolve(key.uri(), null);
        BatchScorer scorer = loader.load(dir, key.layer(),
            new ScorerLoader.Options(key.backend(), key.device(), key.compute(), key.gemm()));
        if (scorer == null) {
          throw new IllegalStateException(key.loader() + ".load returned null");
        }
        long dt = System.nanoTime() - t0;
        LOG.info("moe_score: loaded {} layer {} on {} (device {}) in {} ms", key.uri(), key.layer(), scorer.backend(),
            key.device(), dt / 1_000_000);
        return new Entry(scorer, null, dt);
      } catch (UnsupportedOperationException ex) {
        // remembered too (a GPU load may fail only after reading the weights); get() turns it into the
        // CPU fallback (auto) or a clear error (gpu)
        LOG.info("moe_score: {} layer {} cannot run on {}: {}", key.uri(), key.layer(), key.backend(), ex.getMessage());
        return new Entry(null, ex, System.nanoTime() - t0);
      } catch (RuntimeException ex) {
        LOG.error("moe_score: loading {} layer {} failed (remembered for this JVM): {}", key.uri(), key.layer(),
            ex.toString());
        return new Entry(null, ex, System.nanoTime() - t0);
      }
    });
    if (e.failure() instanceof UnsupportedOperationException u) {
      throw new UnsupportedOperationException(u.getMessage(), u);
    }
    if (e.failure() != null) {
      throw new IllegalStateException("moe_score: model " + k.uri() + " layer " + k.layer() + " failed to load"
          + (loadedHere[0] ? "" : " (earlier attempt in this executor)") + ": " + e.failure().getMessage(),
          e.failure());
    }
    return new Loaded(e.scorer(), loadedHere[0] ? e.loadNanos() : 0L);
  }

  private static void logFallback(String why) {
    if (FALLBACK_LOGGED.compareAndSet(false, true)) {
      LOG.warn("moe_score: " + MoeConf.BACKEND + "=auto runs on the CPU: {}", why);
    }
  }
}
