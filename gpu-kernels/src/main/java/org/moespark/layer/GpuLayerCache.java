package org.moespark.layer;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.moespark.cuda.Cuda;

/**
 * Device-resident weights of loaded MoE blocks, shared per (checkpoint directory, layer, device,
 * compute, GEMM precision) and reference-counted: Spark tasks of one executor that load the same block upload it once;
 * the weights are freed when the last {@link MoeLayer} using them is closed.
 */
final class GpuLayerCache {
  private GpuLayerCache() {}

  private record Key(Path dir, int layer, int device, Compute compute, GemmPrecision gemm) {}

  private static final class Entry {
    final MoeLayerGpu gpu;
    final String modelType;
    final RouterSpec routerSpec;
    int refs;

    Entry(MoeLayerGpu gpu, String modelType, RouterSpec routerSpec) {
      this.gpu = gpu;
      this.modelType = modelType;
      this.routerSpec = routerSpec;
    }
  }

  private static final Map<Key, Entry> ENTRIES = new HashMap<>();

  /** A use of cached weights; {@link #release} exactly once. */
  record Lease(Key key, MoeLayerGpu gpu, String modelType, RouterSpec routerSpec) {
    void release() {
      GpuLayerCache.release(key);
    }
  }

  /** The cached block, or {@code load} uploaded now (under the cache lock: one upload per key). */
  static synchronized Lease acquire(Path dir, int layer, Compute compute, GemmPrecision gemm,
      Supplier<MoeBlockSpec> load) {
    Key key = new Key(dir.toAbsolutePath().normalize(), layer, Cuda.currentDevice(), compute, gemm);
    Entry e = ENTRIES.get(key);
    if (e == null) {
      MoeBlockSpec spec = load.get();
      e = new Entry(MoeLayerGpu.create(spec, compute, gemm), spec.modelType(), spec.router());
      ENTRIES.put(key, e);
    }
    e.refs++;
    return new Lease(key, e.gpu, e.modelType, e.routerSpec);
  }

  private static synchronized void release(Key key) {
    Entry e = ENTRIES.get(key);
    if (e != null && --e.refs == 0) {
      ENTRIES.remove(key);
      e.gpu.close();
    }
  }

  /** Number of cached blocks (tests). */
  static synchronized int size() {
    return ENTRIES.size();
  }
}
