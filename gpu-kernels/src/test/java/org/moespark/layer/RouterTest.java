package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.moespark.ops.Routing;
import org.moespark.testing.Tolerance;

/** The layer's router agrees with the ops' reference routing ({@code org.moespark.ops.Routing}) on the same logits. */
class RouterTest {
  private static Router router(RouterSpec.Kind kind, int e, int k, boolean norm) {
    float[] w = new float[e * 4];
    return new Router(switch (kind) {
      case SOFTMAX_TOPK -> RouterSpec.softmaxTopK(4, e, k, w, norm, false);
      case TOPK_SOFTMAX -> RouterSpec.topKSoftmax(4, e, k, w, null);
      case SIGMOID_GROUPED_TOPK -> RouterSpec.sigmoidGroupedTopK(4, e, k, w, bias(e), 4, 2, norm, 2.5f);
    }, Compute.FP32);
  }

  private static float[] bias(int e) {
    return Naive.randn(new Random(e), e, 0.2);
  }

  private static float[] logits(int t, int e, long seed) {
    float[] l = Naive.randn(new Random(seed), t * e, 2.0);
    // a few exact ties inside rows: tie-breaking must agree too
    for (int i = 0; i + 3 < l.length; i += 37) {
      l[i + 3] = l[i];
    }
    return l;
  }

  @Test
  void softmaxTopKAgrees() {
    for (int[] c : new int[][] {{8, 2}, {64, 8}, {7, 7}, {60, 4}}) {
      for (boolean norm : new boolean[] {false, true}) {
        float[] l = logits(211, c[0], c[0] * 31L + c[1]);
        Router.Routed mine = router(RouterSpec.Kind.SOFTMAX_TOPK, c[0], c[1], norm).select(l.clone(), 211);
        Routing.Result ref = Routing.softmaxTopK(l, 211, c[0], c[1], norm);
        assertArrayEquals(ref.ids(), mine.ids(), "softmax top-k ids E=" + c[0] + " K=" + c[1]);
        Tolerance.FP32.assertClose(mine.weights(), ref.weights(), "softmax top-k weights");
      }
    }
  }

  @Test
  void topKSoftmaxAgrees() {
    for (int[] c : new int[][] {{8, 2}, {32, 4}, {128, 4}, {5, 1}}) {
      float[] l = logits(199, c[0], c[0] * 17L + c[1]);
      Router.Routed mine = router(RouterSpec.Kind.TOPK_SOFTMAX, c[0], c[1], false).select(l.clone(), 199);
      Routing.Result ref = Routing.topKSoftmax(l, 199, c[0], c[1]);
      assertArrayEquals(ref.ids(), mine.ids(), "top-k softmax ids E=" + c[0]);
      Tolerance.FP32.assertClose(mine.weights(), ref.weights(), "top-k softmax weights");
    }
  }

  @Test
  void sigmoidGroupedTopKAgrees() {
    for (int[] c : new int[][] {{16, 4}, {64, 8}, {256, 8}}) {
      for (boolean norm : new boolean[] {false, true}) {
        float[] l = logits(97, c[0], c[0] * 13L + c[1]);
        Router.Routed mine = router(RouterSpec.Kind.SIGMOID_GROUPED_TOPK, c[0], c[1], norm).select(l.clone(), 97);
        Routing.Result ref = Routing.sigmoidGroupedTopK(l, 97, c[0], c[1], bias(c[0]), 4, 2, norm, 2.5f);
        assertArrayEquals(ref.ids(), mine.ids(), "grouped ids E=" + c[0]);
        Tolerance.FP32.assertClose(mine.weights(), ref.weights(), "grouped weights");
      }
    }
  }
}
