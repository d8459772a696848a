// Paddle-semantics moe_permute / moe_unpermute kernels (shared/spec/moe-ops-semantics.md §2, §3).
// Java reference: org.moespark.ops.PaddlePermute. Kernels never allocate: the JNI glue passes
// device pointers, sizes and a stream. All positions come from integer prefix sums in a fixed
// order (experts ascending, tokens ascending): no atomics, bit-identical to the CPU reference.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// Tokens per block of the position pass; also the granularity of the per-expert prefix sums.
constexpr int kPermuteTokensPerBlock = 128;

inline int permute_num_blocks(int64_t tokens) {
  return static_cast<int>((tokens + kPermuteTokensPerBlock - 1) / kPermuteTokensPerBlock);
}

struct PermuteMapsArgs {
  const int32_t* route;       // [S, K] expert id per slot; ids outside [0, E) are empty slots
  const float* probs;         // [S, K] or nullptr
  int64_t tokens;             // S
  int32_t top_k;              // K
  int32_t experts;            // E
  const int64_t* expert_base; // [E] device: first output row of each expert (Σ padded counts before it)
  const int32_t* block_counts;  // [nblocks, E] device: per-expert exclusive prefix over blocks (pass 2)
  int32_t* rowmap;            // [S, E] out: output row of (t, e) or -1
  float* prob_out;            // [R] out or nullptr (padding rows are filled by pass 2)
  int32_t* src_row;           // [R] out: source token of each output row (padding rows: pass 2)
  int32_t* expert_of_row;     // [R] out or nullptr: expert of each output row (padding rows: pass 2)
};

// tokens_per_expert travels as a kernel parameter (no host-to-device copy for it).
constexpr int kMaxPermuteExperts = 384;
struct ExpertCounts {
  int32_t count[kMaxPermuteExperts];
};

struct PermuteScanArgs {
  int32_t experts;          // E
  int32_t nblocks;          // permute_num_blocks(tokens)
  int32_t align;            // padding alignment (rows), > 0
  int32_t counted;          // 1: no tokens_per_expert given; the routed counts take its place (no check)
  int32_t* block_counts;    // [max(1, nblocks), E] scratch: per-block counts, then their per-expert exclusive prefix
  int32_t* block_flags;     // [max(1, nblocks), 2] scratch: per-block first bad-id / duplicate token
  unsigned* ticket;         // scratch word (reset by pass 1)
  int64_t* expert_base;     // [E] out: first output row of each expert = Σ_{j<e} ceil(tpe[j]/align)*align
  int32_t* result;          // [3 + E] out: first bad-id token, first duplicate token, first expert whose routed
                            // count != tokens_per_expert (INT32_MAX = none), then the routed count of each expert
  int32_t* src_row;         // [R] out: padding rows set to -1 (the other rows are written by pass 3)
  int32_t* expert_of_row;   // [R] out or nullptr: padding rows set to -1
  float* prob_out;          // [R] out or nullptr: padding rows set to 0
};

// Passes 1+2 in two launches: route validation, per-block counts and their prefix, per-expert totals,
// the tokens_per_expert check, expert_base and the padding rows. The caller reads `result` back and
// checks it BEFORE pass 3 (expert_base and the output size were computed from tokens_per_expert, or with
// a.counted from the routed counts themselves: the caller sizes the output for the most rows possible).
void launch_permute_prepare(const PermuteScanArgs& a, const int32_t* route, int64_t tokens, int32_t top_k,
                            const ExpertCounts& tokens_per_expert, cudaStream_t stream);

// Permute data movement reading each source row once: out[rowmap[t][e], :] = src[t, :] for every
// routed (t, e); rows whose src_row is -1 (padding) are zeroed.
void launch_scatter_rows(const void* src, int64_t row_bytes, const int32_t* rowmap, int64_t tokens, int32_t experts,
                         const int32_t* src_row, int64_t rows, void* out, cudaStream_t stream);

// Pass 3: rowmap / prob_out / src_row / expert_of_row (non-padding rows). Requires pass 2's block_counts.
void launch_permute_assign(const PermuteMapsArgs& a, cudaStream_t stream);

// out[r, :] = src[src_row[r], :] (row_bytes each), or zeros where src_row[r] < 0 and zero_missing.
void launch_gather_rows(const void* src, int64_t src_rows, int64_t row_bytes, const int32_t* src_row, int64_t rows,
                        void* out, bool zero_missing, cudaStream_t stream);

// Paddle moe_unpermute data path for bf16 tokens (raw uint16 bits):
// out[t, c] = cnt>1 ? bf16_rne(Σ_e (weighted ? x·p : x)) : (cnt==1 ? raw : +0), fp32 sum in ascending e.
void launch_unpermute_bf16(const uint16_t* x_unzipped, int64_t rows, int64_t hidden, const int32_t* rowmap,
                           int64_t tokens, int32_t experts, const float* prob_unzipped, bool weighted,
                           uint16_t* out, cudaStream_t stream);

// Same for fp32 tokens (sum in fp32, ascending e; cnt==1 → raw, cnt==0 → +0).
void launch_unpermute_f32(const float* x_unzipped, int64_t rows, int64_t hidden, const int32_t* rowmap,
                          int64_t tokens, int32_t experts, const float* prob_unzipped, bool weighted, float* out,
                          cudaStream_t stream);

// expert_prob_topk[t, k] = route[t,k] valid ? prob_unzipped[rowmap[t, route[t,k]]] : 0.
void launch_unpermute_probs(const int32_t* route, int64_t tokens, int32_t top_k, int32_t experts,
                            const int32_t* rowmap, const float* prob_unzipped, float* out, cudaStream_t stream);

}  // namespace moespark
