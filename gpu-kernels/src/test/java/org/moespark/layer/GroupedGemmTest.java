package org.moespark.layer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.moespark.formats.Bf16;

/** The host side of the grouped GEMM: its schedule, weight layouts and argument checks (no GPU needed). */
class GroupedGemmTest {

  @Test
  void metaCountsTilesPerExpertByHand() {
    // experts with 0, 1, 128, 129 and 300 rows; n = 130 → 2 n-tiles
    int[] offsets = {0, 0, 1, 129, 258, 558};
    int[] meta = GroupedGemm.meta(offsets, 130);
    // m-tiles: 0, 1, 1, 2, 3 → tiles ×2: 0, 2, 2, 4, 6 → prefix 0, 0, 2, 4, 8, 14
    assertArrayEquals(new int[] {0, 0, 1, 129, 258, 558, 0, 0, 2, 4, 8, 14}, meta);
    assertArrayEquals(new int[] {0, 0, 0, 0}, GroupedGemm.meta(new int[] {0, 0}, 1), "no rows: no tiles");
    assertArrayEquals(new int[] {5, 7, 0, 1}, GroupedGemm.meta(new int[] {5, 7}, 128), "offsets may start past 0");
  }

  @Test
  void metaChecksItsArguments() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.meta(null, 8));
    assertTrue(e.getMessage().contains("offsets must be [experts + 1]") && e.getMessage().contains("null"),
        e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.meta(new int[] {0}, 8));
    assertTrue(e.getMessage().contains("length 1"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.meta(new int[] {0, 4, 3}, 8));
    assertTrue(e.getMessage().contains("offsets[1] = 4 > offsets[2] = 3"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.meta(new int[] {-1, 3}, 8));
    assertTrue(e.getMessage().contains("offsets[0] must be >= 0, got -1"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.meta(new int[] {0, 3}, 0));
    assertTrue(e.getMessage().contains("n must be > 0, got 0"), e.getMessage());
  }

  @Test
  void gateAndUpAreInterleavedPerEightRows() {
    int inter = 11;
    int hidden = 3;
    float[] gate = new float[inter * hidden];
    float[] up = new float[inter * hidden];
    for (int i = 0; i < inter; i++) {
      for (int c = 0; c < hidden; c++) {
        gate[i * hidden + c] = 100 + i + c / 2f; // exact in bf16 (step 0.5 in [64, 128))
        up[i * hidden + c] = -(100 + i + c / 2f);
      }
    }
    short[] w = GroupedGemm.interleaveGateUp(gate, up, inter, hidden);
    assertEquals(2 * 16 * hidden, w.length, "pad8(11) = 16 → [32, 3]");
    // hand layout: rows 0-7 gate 0-7, rows 8-15 up 0-7, rows 16-18 gate 8-10, 19-23 zero, 24-26 up 8-10, 27-31 zero
    int[] gateRowOf = {0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1, -1, -1, -1, -1, 8, 9, 10, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1};
    int[] upRowOf = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 2, 3, 4, 5, 6, 7, -1, -1, -1, -1, -1, -1, -1, -1, 8, 9, 10,
        -1, -1, -1, -1, -1};
    for (int r = 0; r < 32; r++) {
      for (int c = 0; c < hidden; c++) {
        float expected = gateRowOf[r] >= 0 ? 100 + gateRowOf[r] + c / 2f
            : upRowOf[r] >= 0 ? -(100 + upRowOf[r] + c / 2f) : 0f;
        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(Bf16.decode(w[r * hidden + c])),
            "row " + r + " col " + c);
      }
    }
    float[] bias = GroupedGemm.interleaveBias(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, null, inter);
    assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0}, bias);
  }

  @Test
  void weightsAreRoundedToBf16NearestEven() {
    // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even → 1; 1 + 3·2^-9 rounds up
    float[] down = {1f + 0x1p-8f, 1f + 3 * 0x1p-9f};
    short[] d = GroupedGemm.padDown(down, 1, 2);
    assertEquals(8, d.length, "[1, pad8(2) = 8]");
    assertEquals(1f, Bf16.decode(d[0]));
    assertEquals(1f + 0x1p-7f, Bf16.decode(d[1]));
    for (int c = 2; c < 8; c++) {
      assertEquals(0, d[c], "padding column " + c);
    }
  }

  @Test
  void unknownKernelVariantsAreRejected() {
    int before = GroupedGemm.variant();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.setVariant(9));
    assertTrue(e.getMessage().contains("moespark.gemm.variant must be 1, 2, 3, 4, 5, 6, 7 or 8, got 9"), e.getMessage());
    assertEquals(before, GroupedGemm.variant(), "unchanged after a rejected value");
    e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.setVariant(0));
    assertTrue(e.getMessage().contains("got 0"), e.getMessage());
  }

  @Test
  void layoutHelpersCheckShapes() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> GroupedGemm.interleaveGateUp(new float[6], new float[5], 2, 3));
    assertTrue(e.getMessage().contains("up must be [2, 3] = 6 floats, got 5"), e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> GroupedGemm.padDown(new float[6], 0, 3));
    assertTrue(e.getMessage().contains("down must have positive dimensions, got [0, 3]"), e.getMessage());
    assertEquals(0, GroupedGemm.pad8(0));
    assertEquals(8, GroupedGemm.pad8(1));
    assertEquals(768, GroupedGemm.pad8(768));
  }
}
