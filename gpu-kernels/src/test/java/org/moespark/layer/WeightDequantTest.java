package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;
import org.moespark.model.DType;
import org.moespark.model.WeightTensor;
import org.moespark.testing.Tolerance;

/** Quantized checkpoint weights → fp32, through the loader's dispatch, on hand-computed values. */
class WeightDequantTest {
  private static ByteBuffer bytes(int... b) {
    ByteBuffer buf = ByteBuffer.allocate(b.length);
    for (int v : b) {
      buf.put((byte) v);
    }
    return buf.flip();
  }

  private static ByteBuffer floats(float... f) {
    ByteBuffer buf = ByteBuffer.allocate(4 * f.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : f) {
      buf.putFloat(v);
    }
    return buf.flip();
  }

  @Test
  void mxfp4LowNibbleFirstTimesPowerOfTwo() {
    // row 0: scale byte 128 = 2^1; byte 0x72 → elements 1.0, 6.0; byte 0x9A → -1.0, -0.5
    // row 1: scale byte 125 = 2^-2; byte 0x0F → -6.0, 0.0
    int[] data = new int[32];
    data[0] = 0x72;
    data[1] = 0x9A;
    data[16] = 0x0F;
    float[] got = MoeBlockLoader.dequant(WeightTensor.mxfp4("w", 2, 32, bytes(data), bytes(128, 125)));
    float[] expected = new float[64];
    expected[0] = 2f;
    expected[1] = 12f;
    expected[2] = -2f;
    expected[3] = -1f;
    expected[32] = -1.5f;
    expected[33] = 0f;
    Tolerance.assertBitEqual(got, expected, "mxfp4");
  }

  @Test
  void fp8BlockWithRaggedBlocksAndF32Scales() {
    // [3, 5] weight, 2×2 blocks → scales [2, 3]; e4m3 0x38 = 1.0, 0x44 = 3.0, 0xBC = -1.5
    int[] q = new int[15];
    java.util.Arrays.fill(q, 0x38);
    q[4] = 0x44; // row 0, col 4 → block (0, 2)
    q[10] = 0xBC; // row 2, col 0 → block (1, 0)
    float[] s = {1f, 2f, 4f, 0.5f, 0.25f, 8f};
    float[] got = MoeBlockLoader.dequant(WeightTensor.fp8Block("w", 3, 5, bytes(q), floats(s), DType.F32, 2, 2));
    float[] expected = {1, 1, 2, 2, 12, 1, 1, 2, 2, 4, -0.75f, 0.5f, 0.25f, 0.25f, 8};
    Tolerance.assertBitEqual(got, expected, "fp8 block, F32 scales");
  }

  @Test
  void fp8BlockWithE8m0Scales() {
    // one 128×128 block; scale byte 130 = 2^3; e4m3 0x44 = 3.0 → 24
    int[] q = {0x44, 0x38};
    float[] got = MoeBlockLoader.dequant(WeightTensor.fp8Block("w", 1, 2, bytes(q), bytes(130), DType.F8_E8M0, 128,
        128));
    Tolerance.assertBitEqual(got, new float[] {24f, 8f}, "fp8 block, E8M0 scales");
  }

  @Test
  void nvfp4BlockScaleTimesGlobalScale() {
    // 16 elements, scale e4m3 0x40 = 2.0, weight_scale_2 = 0.25 → factor 0.5
    // byte 0x53 → 1.5, 3.0; byte 0xF1 → 0.5, -6.0
    float[] got = MoeBlockLoader.dequant(WeightTensor.nvfp4("w", 1, 16, bytes(0x53, 0xF1, 0, 0, 0, 0, 0, 0),
        bytes(0x40), 0.25f, Float.NaN));
    float[] expected = new float[16];
    expected[0] = 0.75f;
    expected[1] = 1.5f;
    expected[2] = 0.25f;
    expected[3] = -3f;
    Tolerance.assertBitEqual(got, expected, "nvfp4");
  }

  @Test
  void shapesAreChecked() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> WeightDequant.mxfp4(bytes(new int[15]), bytes(1), 1, 32));
    assertTrue(e.getMessage().contains("MXFP4 blocks must hold 16 bytes, got 15"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> WeightDequant.fp8Block(bytes(new int[4]), new float[3], 2, 2, 128, 128));
    assertTrue(e.getMessage().contains("weight_scale_inv must be [1, 1] = 1 floats") && e.getMessage().contains("got 3"),
        e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> WeightDequant.nvfp4DoubleQuantized(new float[16], 1, 16, new float[1], 0f));
    assertTrue(e.getMessage().contains("double-quantization scale must be finite and > 0, got 0.0"), e.getMessage());
  }
}
