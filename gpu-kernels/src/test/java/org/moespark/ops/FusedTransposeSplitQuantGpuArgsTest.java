package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.FakeDeviceBuffers;

/** FusedTransposeSplitQuantGpu's argument checks (no GPU needed). */
class FusedTransposeSplitQuantGpuArgsTest {
  private static final DeviceBuffer BIG = FakeDeviceBuffers.of(1L << 30);

  private static void rejects(String fragment, Executable call) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
    assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
  }

  @Test
  void sameChecksAsTheCpuReference() {
    rejects("m (100) must be a multiple of 128",
        () -> FusedTransposeSplitQuantGpu.quantize(BIG, 100, 8, new int[] {100}, false, BIG, BIG, null));
    rejects("tokensPerExpert[1] = 64 must be a non-negative multiple of 128",
        () -> FusedTransposeSplitQuantGpu.quantize(BIG, 256, 8, new int[] {128, 64, 64}, false, BIG, BIG, null));
    rejects("tokensPerExpert sums to 128, expected m = 256",
        () -> FusedTransposeSplitQuantGpu.quantize(BIG, 256, 8, new int[] {128, 0}, false, BIG, BIG, null));
    rejects("k", () -> FusedTransposeSplitQuantGpu.quantize(BIG, 128, FusedTransposeSplitQuant.MAX_K + 1,
        new int[] {128}, false, BIG, BIG, null));
    rejects("tokensPerExpert must not be null",
        () -> FusedTransposeSplitQuantGpu.quantize(BIG, 128, 8, null, false, BIG, BIG, null));
    rejects("at most 960", () -> FusedTransposeSplitQuantGpu.quantize(BIG, 0, 8, new int[961], false, BIG, BIG, null));
  }

  @Test
  void buffersAreSizedByShape() {
    DeviceBuffer small = FakeDeviceBuffers.of(1000);
    int[] tpe = {256};
    rejects("x [256, 8] bf16 needs 4096 bytes but the device buffer has 1000",
        () -> FusedTransposeSplitQuantGpu.quantize(small, 256, 8, tpe, false, BIG, BIG, null));
    rejects("out (all experts' [k, n_e], 256 x 8) e4m3 needs 2048 bytes",
        () -> FusedTransposeSplitQuantGpu.quantize(BIG, 256, 8, tpe, false, small, BIG, null));
    rejects("scales [2, 200] fp32 needs 1600 bytes",
        () -> FusedTransposeSplitQuantGpu.quantize(BIG, 256, 200, tpe, false, BIG, small, null));
    rejects("inputScales [256, 2] fp32 needs 2048 bytes",
        () -> FusedTransposeSplitQuantGpu.quantizeFp8(BIG, small, 256, 200, tpe, false, BIG, BIG, null));
    rejects("stream must not be null",
        () -> FusedTransposeSplitQuantGpu.quantizeFp8(BIG, BIG, 256, 200, tpe, false, BIG, BIG, null));
  }
}
