package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.FakeDeviceBuffers;
import org.moespark.ops.RoutingGpu.LogitsType;

/** RoutingGpu's argument checks (run without a GPU: every check fires before any launch). */
class RoutingGpuArgsTest {
  private static final DeviceBuffer BIG = FakeDeviceBuffers.of(1L << 30);

  private static void rejects(String fragment, Executable call) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
    assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
  }

  @Test
  void shapeChecksNameTheBadValue() {
    rejects("experts", () -> RoutingGpu.softmaxTopK(BIG, LogitsType.F32, 4, 513, 2, true, BIG, BIG, null));
    rejects("experts", () -> RoutingGpu.softmaxTopK(BIG, LogitsType.F32, 4, 0, 1, true, BIG, BIG, null));
    rejects("topK", () -> RoutingGpu.topKSoftmax(BIG, LogitsType.F32, 4, 8, 9, BIG, BIG, null));
    rejects("tokens", () -> RoutingGpu.topKSoftmax(BIG, LogitsType.BF16, -1, 8, 2, BIG, BIG, null));
    rejects("type", () -> RoutingGpu.topKSoftmax(BIG, null, 1, 8, 2, BIG, BIG, null));
  }

  @Test
  void bufferChecksNameTensorAndSizes() {
    DeviceBuffer small = FakeDeviceBuffers.of(100);
    rejects("logits [10, 8] BF16 needs 160 bytes but the device buffer has 100",
        () -> RoutingGpu.softmaxTopK(small, LogitsType.BF16, 10, 8, 2, true, BIG, BIG, null));
    rejects("ids [30, 1] int32 needs 120 bytes",
        () -> RoutingGpu.softmaxTopK(BIG, LogitsType.F32, 30, 8, 1, true, small, BIG, null));
    rejects("weights [30, 1] fp32 needs 120 bytes",
        () -> RoutingGpu.topKSoftmax(BIG, LogitsType.F32, 30, 8, 1, BIG, small, null));
    rejects("logits must not be null",
        () -> RoutingGpu.topKSoftmax(null, LogitsType.F32, 30, 8, 1, BIG, BIG, null));
    rejects("correctionBias [256] fp32 needs 1024 bytes",
        () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3, 256, 8, small, 8, 4, true, 2.5f,
            Routing.GroupMask.NEG_INF, BIG, BIG, null));
  }

  @Test
  void groupChecks() {
    rejects("power-of-two group size, got experts / nGroup = 160 / 8 = 20",
        () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3, 160, 6, null, 8, 3, true, 1f,
            Routing.GroupMask.NEG_INF, BIG, BIG, null));
    rejects("multiple of nGroup (3)", () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3, 256, 8, null, 3, 1,
        true, 1f, Routing.GroupMask.NEG_INF, BIG, BIG, null));
    rejects("topkGroup", () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3, 256, 8, null, 8, 9, true, 1f,
        Routing.GroupMask.NEG_INF, BIG, BIG, null));
    rejects("topK (8) exceeds the experts of the kept groups (topkGroup 1 x group size 4)",
        () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3, 64, 8, null, 16, 1, true, 1f,
            Routing.GroupMask.NEG_INF, BIG, BIG, null));
    rejects("routedScalingFactor must be finite, got NaN", () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3,
        256, 8, null, 8, 4, true, Float.NaN, Routing.GroupMask.NEG_INF, BIG, BIG, null));
    rejects("mask", () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3, 256, 8, null, 8, 4, true, 1f, null,
        BIG, BIG, null));
    rejects("stream must not be null", () -> RoutingGpu.sigmoidGroupedTopK(BIG, LogitsType.F32, 3, 256, 8, null, 8, 4,
        true, 1f, Routing.GroupMask.ZERO, BIG, BIG, null));
  }
}
