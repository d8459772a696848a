// TransformerEngine index-map moe_permute / moe_unpermute on the GPU (spec moe-ops-semantics §7).
// Java API: org.moespark.ops.TePermuteGpu; CPU reference: org.moespark.ops.TePermute. Kernels never
// allocate: the JNI glue passes device pointers (scratch included), sizes and a stream.
//
// row_id_map: a stable radix sort (cub::DeviceRadixSort, deterministic and stable) of the flattened
// positions t*topK+k keyed by the expert id as an unsigned 32-bit value, exactly TE's sort after fix
// b7323b1ec; entry k*N+t of the map is the sorted position of (t, k), or -1 past num_out_tokens.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace moespark {

// p[0..n) = v (used to pre-set the validation flags of every TE op to INT32_MAX = "no error").
void launch_te_fill_i32(int32_t* p, int64_t n, int32_t v, cudaStream_t stream);

// cub temporary storage for sorting n (uint32 key, int32 value) pairs.
size_t te_index_sort_temp_bytes(int64_t n);

struct TeIndexMapArgs {
  const int32_t* indices;  // [N, K] expert ids (any int32; negative = empty slot)
  int64_t num_tokens;      // N
  int32_t top_k;           // K (N*K < 2^31, checked by the caller)
  int64_t num_out;         // rows kept, in [0, N*K]
  uint32_t* keys_out;      // [N*K] scratch
  int32_t* pos_in;         // [N*K] scratch
  int32_t* pos_out;        // [N*K] scratch
  void* sort_temp;         // te_index_sort_temp_bytes(N*K) bytes of scratch
  size_t sort_temp_bytes;
  int32_t* row_id_map;     // [K*N] out, k-major
  int32_t* dup_flag;       // [1] out: first token naming a non-negative expert twice, INT32_MAX if none
};

void launch_te_index_map(const TeIndexMapArgs& a, cudaStream_t stream);

// out[row_id_map[k*N+t], :] = inp[t, :] for every kept (t, k): each source row read once, written to
// each of its rows; row_bytes per row (any multiple of 1; 16-byte vectors when aligned).
void launch_te_index_permute_rows(const void* inp, int64_t num_tokens, int64_t row_bytes, const int32_t* row_id_map,
                                  int32_t top_k, void* out, cudaStream_t stream);

// TE's unpermute (see TePermute.moeUnpermute): per token, slot order, fp32 __fmul_rn/__fadd_rn;
// bf16_steps rounds the prob, every product and every partial sum to bf16 (bf16 tokens only).
// bad[0] receives the smallest flat index k*N+t whose entry is not -1 and not in [0, num_rows)
// (INT32_MAX when none; the caller pre-sets it); such entries are skipped.
void launch_te_index_unpermute(bool bf16, bool bf16_steps, const void* inp, int64_t num_rows, int64_t hidden,
                               const int32_t* row_id_map, const float* probs, int64_t num_tokens, int32_t top_k,
                               void* out, int32_t* bad, cudaStream_t stream);

}  // namespace moespark
