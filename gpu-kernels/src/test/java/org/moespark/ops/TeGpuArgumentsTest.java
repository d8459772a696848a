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

  @Test
  void teMaskPermuteGpuRejectsBadShapes() {
    assertRejects(() -> TeMaskPermuteGpu.makeRowIdMap(null, null, -2, 4), "num_tokens", "-2");
    assertRejects(() -> TeMaskPermuteGpu.makeRowIdMap(null, null, 2, 0), "num_experts", "0");
    assertRejects(() -> TeMaskPermuteGpu.moePermute(null, TeDtype.FP32, null, 2, -1, null, 4, 3), "hidden", "-1");
    assertRejects(() -> TeMaskPermuteGpu.moePermute(null, TeDtype.FP32, null, 2, 4, null, 4, -3), "num_out_tokens",
        "-3");
    assertRejects(() -> TeMaskPermuteGpu.moePermuteAndPadWithProbs(null, TeDtype.BF16, null, 2, 4, null, null, 4,
        new int[] {1, 1, 1, 1}, 0), "align_size", "0");
    assertRejects(() -> TeMaskPermuteGpu.moePermuteAndPadWithProbs(null, TeDtype.BF16, null, 2, 4, null, null, 4,
        new int[] {1, 1, 1}, 16), "tokens_per_expert", "expected 4", "got 3");
    assertRejects(() -> TeMaskPermuteGpu.moeUnpermute(null, TeDtype.FP32, null, 3, 4, null, 2, null, 1,
        new int[] {0}), "pad_offsets", "expected 2");
    assertRejects(() -> TeMaskPermuteGpu.moeUnpermute(null, TeDtype.FP32, null, 3, 4, null, 2, null, 1,
        new int[] {0, -1}), "pad_offsets[1]", "-1");
    assertRejects(() -> TeMaskPermuteGpu.moeUnpermute(null, TeDtype.FP32, null, 3, 4, null, 0, null, 1, null),
        "num_experts");
    assertRejects(() -> TeMaskPermuteGpu.moeUnpermute(null, TeDtype.FP32, null, 3, 4, null, 2, null, -1, null),
        "restore_shape[0]", "-1");
    NullPointerException e = assertThrows(NullPointerException.class,
        () -> TeMaskPermuteGpu.moePermuteWithProbs(null, TeDtype.FP32, null, 2, 4, null, null, 4, 3));
    assertTrue(e.getMessage().contains("probs"), e.getMessage());
    e = assertThrows(NullPointerException.class,
        () -> TeMaskPermuteGpu.moePermute(null, TeDtype.FP32, null, 2, 4, null, 4, 3));
    assertTrue(e.getMessage().startsWith("inp [2, 4] fp32"), e.getMessage());
  }

  @Test
  void teSortChunksGpuRejectsWhatTheCpuRejects() {
    assertRejects(() -> TeSortChunksGpu.makeChunkSortMap(null, new int[] {2, 3}, new int[] {1, 0}, 4),
        "sum(split_sizes) = 5", "num_tokens = 4");
    assertRejects(() -> TeSortChunksGpu.makeChunkSortMap(null, new int[] {9, -1}, new int[] {1, 0}, 4),
        "split_sizes[1]", "-1");
    assertRejects(() -> TeSortChunksGpu.makeChunkSortMap(null, new int[] {1, 1}, new int[] {1, 1}, 4),
        "sorted_index[1] = 1 repeats sorted_index[0]");
    assertRejects(() -> TeSortChunksGpu.makeChunkSortMap(null, new int[] {1, 1}, new int[] {0, 2}, 4),
        "sorted_index[1] = 2", "[0, 2)");
    assertRejects(() -> TeSortChunksGpu.makeChunkSortMap(null, new int[] {1, 1}, new int[] {0}, 4), "sorted_index",
        "expected 2");
    assertRejects(() -> TeSortChunksGpu.moeSortChunksByIndex(null, TeDtype.FP32, null, 4, -1, new int[] {1},
        new int[] {0}), "hidden", "-1");
    NullPointerException e = assertThrows(NullPointerException.class,
        () -> TeSortChunksGpu.moeSortChunksByIndex(null, TeDtype.BF16, null, 4, 3, new int[] {1}, new int[] {0}));
    assertTrue(e.getMessage().startsWith("inp [4, 3] bf16"), e.getMessage());
    e = assertThrows(NullPointerException.class, () -> TeSortChunksGpu.moeSortChunksByIndexWithProbs(null,
        TeDtype.FP32, null, 4, 3, null, new int[] {1}, new int[] {0}));
    assertTrue(e.getMessage().contains("probs"), e.getMessage());
  }
}
