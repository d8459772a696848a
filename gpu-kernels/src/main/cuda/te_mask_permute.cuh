// TransformerEngine mask-map permutation on the GPU (spec moe-ops-semantics §8): make_row_id_map,
// moe_permute(_with_probs), moe_permute_and_pad_with_probs and moe_unpermute. Java API:
// org.moespark.ops.TeMaskPermuteGpu; CPU reference: org.moespark.ops.TeMaskPermute. Kernels never
// allocate; all positions are integer prefix sums in a fixed order (no atomics that change results).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// Tokens per block of the map passes: one 32-bit word per (block, expert) says which tokens of the
// block are routed to the expert; ranks inside a block are popcounts of the lower bits.
constexpr int kTeMaskTokensPerBlock = 32;

inline int64_t te_mask_blocks(int64_t tokens) { return (tokens + kTeMaskTokensPerBlock - 1) / kTeMaskTokensPerBlock; }

struct TeMaskMapArgs {
  const uint8_t* routing_map;  // [N, E] bytes, 0/1
  int64_t num_tokens;          // N
  int32_t experts;             // E
  uint32_t* bits;              // [nblocks, E] scratch
  int32_t* prefix;             // [nblocks, E] scratch: tokens of earlier blocks routed to e
  int32_t* counts;             // [E] out: tokens per expert
  int64_t* base;               // [E] scratch: first row of expert e (Σ counts before e)
  int64_t* status;             // [2] out: [0] first linear index t*E+e whose byte is not 0/1 (INT64_MAX if none),
                               //          [1] Σ counts
  int32_t* row_id_map;         // [N, 2E+1] out
};

// Builds row_id_map (layout of TeMaskPermute.makeRowIdMap, unused columns -1) plus counts / status.
void launch_te_mask_map(const TeMaskMapArgs& a, cudaStream_t stream);

// Permute data movement: for every token t and each of its n routed pairs (row, e) in map order,
// out[row + pad_offsets[e]] = inp[t] (or zeros when probs[t][e] == ±0); permuted_probs[...] =
// probs[t][e]. probs, permuted_probs and pad_offsets may be null. Each source row is read once.
void launch_te_mask_permute_rows(const void* inp, int64_t num_tokens, int64_t row_bytes, const int32_t* row_id_map,
                                 int32_t experts, const float* probs, const int32_t* pad_offsets, void* out,
                                 float* permuted_probs, cudaStream_t stream);

// Zeroes the padding rows (and their probs): for expert e, pad_count[e] rows from pad_start[e].
void launch_te_mask_zero_padding(int64_t row_bytes, const int32_t* pad_start, const int32_t* pad_count, int32_t experts,
                                 void* out, float* permuted_probs, cudaStream_t stream);

// Unpermute: out[t] = Σ_i inp[row_i + pad[e_i]] * merging_probs[t][e_i] in map order (descending
// expert), fp32 __fmul_rn/__fadd_rn from +0, bf16 rounded once at the end; +0 rows when n == 0.
// bad[0] receives the smallest token whose map row is malformed or reads outside [0, num_rows)
// (INT32_MAX when none, pre-set by the caller); such tokens are not written.
void launch_te_mask_unpermute(bool bf16, const void* inp, int64_t num_rows, int64_t hidden, const int32_t* row_id_map,
                              int32_t experts, const float* merging_probs, int64_t num_tokens, const int32_t* pad_offsets,
                              void* out, int32_t* bad, cudaStream_t stream);

}  // namespace moespark
