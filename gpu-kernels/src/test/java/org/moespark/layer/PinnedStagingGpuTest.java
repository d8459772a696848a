package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.NativeLibrary;
import org.moespark.testing.Tolerance;

/**
 * {@link PinnedStaging} is data movement around {@link MoeLayerGpu#forwardDevice}: chunks pushed through the
 * two slots (uploads overlapping compute, several stagings on one layer from several threads) must give
 * bit for bit what forwardDevice gives on the same rows from device memory.
 */
@Tag("gpu")
class PinnedStagingGpuTest {
  @BeforeEach
  void gpu() {
    assumeTrue(NativeLibrary.isAvailable(), NativeLibrary.describe());
  }

  /** forwardDevice on rows [from, from + n) of x: y and ids. */
  private static MoeLayer.Output reference(MoeLayerGpu g, float[] x, int from, int n) {
    int h = g.hiddenSize();
    try (DeviceBuffer xd = g.allocate(4L * n * h, "x"); DeviceBuffer yd = g.allocate(4L * n * h, "y")) {
      xd.copyFrom(Arrays.copyOfRange(x, from * h, (from + n) * h));
      MoeLayer.Output o = g.forwardDevice(xd, n, yd);
      return new MoeLayer.Output(n, h, g.topK(), yd.toFloats(n * h), o.topkIds(), o.topkWeights());
    }
  }

  /** Pushes rows [0, t) through the staging in chunks of its capacity, upload(i+1) before compute(i). */
  private static void staged(PinnedStaging s, float[] x, int t, float[] y, int[] ids, float[] w) {
    int h = s.hiddenSize();
    int k = s.layer().topK();
    int cap = s.capacity();
    int chunks = (t + cap - 1) / cap;
    int[] from = new int[2];
    PinnedStaging.Result[] pending = new PinnedStaging.Result[2];
    load(s, 0, x, 0, Math.min(cap, t));
    s.upload(0, Math.min(cap, t));
    for (int i = 0; i < chunks; i++) {
      int cur = i % 2;
      int other = 1 - cur;
      if (pending[other] != null) {
        drain(s, other, pending[other], from[other], y, ids, w, h, k);
        pending[other] = null;
      }
      if (i + 1 < chunks) {
        int f = (i + 1) * cap;
        int n = Math.min(cap, t - f);
        load(s, other, x, f, n);
        from[other] = f;
        s.upload(other, n);
      }
      pending[cur] = s.compute(cur);
      assertTrue(pending[cur].computeNanos() > 0 && pending[cur].hostToDeviceNanos() >= 0, "timings");
    }
    for (int q = 0; q < 2; q++) {
      int sl = (chunks + q) % 2;
      if (pending[sl] != null) {
        drain(s, sl, pending[sl], from[sl], y, ids, w, h, k);
      }
    }
  }

  private static void load(PinnedStaging s, int slot, float[] x, int from, int n) {
    int h = s.hiddenSize();
    s.inputBuffer(slot).asFloatBuffer().put(x, from * h, n * h);
  }

  private static void drain(PinnedStaging s, int slot, PinnedStaging.Result r, int from, float[] y, int[] ids,
      float[] w, int h, int k) {
    assertTrue(s.awaitOutput(slot) >= 0);
    ByteBuffer out = s.outputBuffer(slot);
    out.asFloatBuffer().get(y, from * h, r.rows() * h);
    System.arraycopy(r.topkIds(), 0, ids, from * k, r.rows() * k);
    System.arraycopy(r.topkWeights(), 0, w, from * k, r.rows() * k);
  }

  @Test
  void chunksThroughTwoSlotsEqualForwardDeviceBitForBit() {
    MoeBlockSpec spec = MoeLayerTest.family("olmoe", 11);
    int h = MoeLayerTest.H;
    int t = 1223; // prime: a short last chunk
    float[] x = Naive.randn(new Random(9), t * h, 1.0);
    try (MoeLayer l = MoeLayer.create(spec, new LayerOptions(Backend.GPU, Compute.FP32))) {
      MoeLayerGpu g = l.gpu();
      for (int cap : new int[] {1583, 300, 97}) { // one chunk, several, many
        float[] y = new float[t * h];
        int[] ids = new int[t * g.topK()];
        float[] w = new float[t * g.topK()];
        try (PinnedStaging s = PinnedStaging.create(g, cap)) {
          staged(s, x, t, y, ids, w);
        }
        for (int f = 0; f < t; f += cap) {
          int n = Math.min(cap, t - f);
          MoeLayer.Output ref = reference(g, x, f, n);
          String what = "capacity " + cap + " chunk at " + f;
          Tolerance.assertBitEqual(Arrays.copyOfRange(y, f * h, (f + n) * h), ref.y(), what + " y");
          assertArrayEquals(ref.topkIds(), Arrays.copyOfRange(ids, f * g.topK(), (f + n) * g.topK()), what + " ids");
          Tolerance.assertBitEqual(Arrays.copyOfRange(w, f * g.topK(), (f + n) * g.topK()), ref.topkWeights(),
              what + " weights");
        }
      }
    }
  }

  @Test
  void severalThreadsShareOneLayer() throws Exception {
    MoeBlockSpec spec = MoeLayerTest.family("mixtral", 12);
    int h = MoeLayerTest.H;
    int t = 640;
    int cap = 128;
    try (MoeLayer l = MoeLayer.create(spec, new LayerOptions(Backend.GPU, Compute.BF16))) {
      MoeLayerGpu g = l.gpu();
      int nt = 4;
      float[][] xs = new float[nt][];
      float[][] ys = new float[nt][];
      Thread[] th = new Thread[nt];
      Throwable[] err = new Throwable[nt];
      for (int i = 0; i < nt; i++) {
        xs[i] = MoeLayerTest.bf16(Naive.randn(new Random(100 + i), t * h, 1.0));
        ys[i] = new float[t * h];
        int q = i;
        th[i] = new Thread(() -> {
          try (PinnedStaging s = PinnedStaging.create(g, cap)) {
            for (int rep = 0; rep < 3; rep++) {
              staged(s, xs[q], t, ys[q], new int[t * g.topK()], new float[t * g.topK()]);
            }
          } catch (Throwable e) {
            err[q] = e;
          }
        });
        th[i].start();
      }
      for (int i = 0; i < nt; i++) {
        th[i].join();
        if (err[i] != null) {
          throw new AssertionError("thread " + i, err[i]);
        }
      }
      for (int i = 0; i < nt; i++) {
        for (int f = 0; f < t; f += cap) {
          Tolerance.assertBitEqual(Arrays.copyOfRange(ys[i], f * h, (f + cap) * h), reference(g, xs[i], f, cap).y(),
              "thread " + i + " chunk " + f);
        }
      }
    }
  }

  @Test
  void misuseIsNamed() {
    MoeBlockSpec spec = MoeLayerTest.family("olmoe", 13);
    try (MoeLayer l = MoeLayer.create(spec, new LayerOptions(Backend.GPU, Compute.FP32));
        PinnedStaging s = PinnedStaging.create(l.gpu(), 8)) {
      assertThrows(IllegalStateException.class, () -> s.compute(0), "compute before upload");
      assertThrows(IllegalStateException.class, () -> s.awaitOutput(1), "await without compute");
      assertThrows(IllegalArgumentException.class, () -> s.upload(0, 9), "more rows than capacity");
      assertThrows(IllegalArgumentException.class, () -> s.upload(2, 1), "slot 2");
      s.upload(0, 0);
      assertEquals(0, s.compute(0).rows());
      s.awaitOutput(0);
    }
    assertThrows(IllegalArgumentException.class, () -> PinnedStaging.create(null, 8));
  }
}
