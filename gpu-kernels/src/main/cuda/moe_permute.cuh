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
  int32_t* block_counts;      // [nblocks, E] device scratch
  int32_t* expert_counts;     // [E] device out: valid assignments per expert (for the tokens_per_expert check)
  int32_t* rowmap;            // [S, E] out: output row of (t, e) or -1
  float* prob_out;            // [R] out or nullptr (padding rows must be pre-zeroed)
  int32_t* src_row;           // [R] out: source token of each output row (padding rows pre-set to -1)
  int32_t* expert_of_row;     // [R] out or nullptr: expert of each output row (padding pre-set to -1)
};

// flags[0] = first token with an id outside {-1} ∪ [0, E), flags[1] = first token naming an expert
// twice (INT_MAX when none); the minimum is order-independent, so the result is deterministic.
void launch_validate_route(const int32_t* route, int64_t tokens, int32_t top_k, int32_t experts, int32_t* flags,
                           cudaStream_t stream);

// tokens_per_expert travels as a kernel parameter (no host-to-device copy for it).
constexpr int kMaxPermuteExperts = 384;
struct ExpertCounts {
  int32_t count[kMaxPermuteExperts];
};

// expert_base[e] = Σ_{j<e} ceil(tpe[j]/align)*align; flags[2] = first e with expert_counts[e] != tpe[e].
void launch_permute_base(const ExpertCounts& tokens_per_expert, const int32_t* expert_counts, int32_t experts,
                         int32_t align, int64_t* expert_base, int32_t* flags, cudaStream_t stream);

// Permute data movement reading each source row once: out[rowmap[t][e], :] = src[t, :] for every
// routed (t, e); rows whose src_row is -1 (padding) are zeroed.
void launch_scatter_rows(const void* src, int64_t row_bytes, const int32_t* rowmap, int64_t tokens, int32_t experts,
                         const int32_t* src_row, int64_t rows, void* out, cudaStream_t stream);

void launch_fill_i32(int32_t* p, int64_t n, int32_t value, cudaStream_t stream);

// Pass 1+2: per-block counts and their per-expert exclusive prefix (block_counts), and the per-expert
// totals (expert_counts). The caller checks expert_counts against tokens_per_expert BEFORE pass 3,
// since expert_base (and the output size) were computed from tokens_per_expert.
void launch_permute_count(const PermuteMapsArgs& a, cudaStream_t stream);

// Pass 3: rowmap / prob_out / src_row / expert_of_row. Requires launch_permute_count's block_counts.
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
