package org.moespark.ops;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.moespark.ops.TeTestSupport.assertRejects;

import org.junit.jupiter.api.Test;

/**
 * The host-side argument checks of the TE GPU twins. They run before any device buffer or the
 * native library is touched, so this class runs in CI without a GPU (buffers are passed as null).
 */
class TeGpuArgumentsTest {

  @Test
  void tePermuteGpuRejectsBadShapes() {
    assertRejects(() -> TePermuteGpu.makeRowIdMap(null, null, -1, 2, 0), "num_tokens", "-1");
    assertRejects(() -> TePermuteGpu.makeRowIdMap(null, null, 4, 0, 0), "topK", "0");
    assertRejects(() -> TePermuteGpu.makeRowIdMap(null, null, 1 << 20, 1 << 12, 0), "num_tokens * topK",
        "overflows int32");
    assertRejects(() -> TePermuteGpu.makeRowIdMap(null, null, 3, 2, 7), "num_out_tokens = 7", "[0, 6]");
    assertRejects(() -> TePermuteGpu.makeRowIdMap(null, null, 3, 2, -1), "num_out_tokens = -1");
    assertRejects(() -> TePermuteGpu.moePermute(null, TeDtype.FP32, null, 3, 6, null, 2, 0), "hidden = 6",
        "multiple of 4", "fp32");
    assertRejects(() -> TePermuteGpu.moePermute(null, TeDtype.BF16, null, 3, 12, null, 2, 0), "hidden = 12",
        "multiple of 8", "bf16");
    assertRejects(() -> TePermuteGpu.moePermute(null, TeDtype.FP32, null, 3, -4, null, 2, 0), "hidden", "-4");
    assertRejects(() -> TePermuteGpu.moeUnpermute(null, TeDtype.BF16, null, 5, 4, null, null, 3, 2), "hidden = 4",
        "multiple of 8");
    assertRejects(() -> TePermuteGpu.moeUnpermute(null, TeDtype.FP32, null, -5, 4, null, null, 3, 2), "num_rows",
        "-5");
    assertRejects(() -> TePermuteGpu.moeUnpermute(null, TeDtype.FP32, null, 5, 4, null, null, 3, 0), "topK");
    assertRejects(() -> TePermuteGpu.moeUnpermute(null, TeDtype.FP32, null, 5, 4, null, -3), "row_id_map length",
        "-3");
    NullPointerException e = assertThrows(NullPointerException.class,
        () -> TePermuteGpu.moePermute(null, TeDtype.FP32, null, 3, 8, null, 2, 0));
    assertTrue(e.getMessage().startsWith("inp [3, 8] fp32"), e.getMessage());
    e = assertThrows(NullPointerException.class,
        () -> TePermuteGpu.moeUnpermute(null, null, null, 3, 8, null, null, 2, 1));
    assertTrue(e.getMessage().contains("dtype"), e.getMessage());
  }
}
