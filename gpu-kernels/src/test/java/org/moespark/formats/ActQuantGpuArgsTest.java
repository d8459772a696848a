package org.moespark.formats;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.moespark.cuda.DeviceBuffer;
import org.moespark.cuda.FakeDeviceBuffers;

/** ActQuantGpu's argument checks (no GPU needed: they fire before any launch). */
class ActQuantGpuArgsTest {
  private static final DeviceBuffer BIG = FakeDeviceBuffers.of(1L << 30);

  private static void rejects(String fragment, Executable call) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
    assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
  }

  @Test
  void scaleColsIsCeilOf128() {
    assertTrue(ActQuantGpu.scaleCols(0) == 0 && ActQuantGpu.scaleCols(1) == 1 && ActQuantGpu.scaleCols(128) == 1
        && ActQuantGpu.scaleCols(129) == 2 && ActQuantGpu.scaleCols(7168) == 56);
  }

  @Test
  void checksNameTheBadValue() {
    BlockFp8.ScaleRule p = BlockFp8.ScaleRule.PADDLE;
    ActQuantGpu.Input bf = ActQuantGpu.Input.BF16;
    rejects("rule must not be null", () -> ActQuantGpu.quantize(null, bf, BIG, 1, 1, false, BIG, BIG, null));
    rejects("input must not be null", () -> ActQuantGpu.quantize(p, null, BIG, 1, 1, false, BIG, BIG, null));
    rejects("shape must be non-negative, got [-1, 4]",
        () -> ActQuantGpu.quantize(p, bf, BIG, -1, 4, false, BIG, BIG, null));
    DeviceBuffer small = FakeDeviceBuffers.of(1000);
    rejects("x [4, 200] BF16 needs 1600 bytes but the device buffer has 1000",
        () -> ActQuantGpu.quantize(p, bf, small, 4, 200, false, BIG, BIG, null));
    rejects("q [4, 300] e4m3 needs 1200 bytes",
        () -> ActQuantGpu.quantize(p, bf, BIG, 4, 300, false, small, BIG, null));
    rejects("scales [300, 3] fp32 needs 3600 bytes",
        () -> ActQuantGpu.quantize(p, ActQuantGpu.Input.F32, BIG, 300, 300, false, BIG, small, null));
    rejects("stream must not be null", () -> ActQuantGpu.quantize(p, bf, BIG, 4, 300, false, BIG, BIG, null));
  }
}
