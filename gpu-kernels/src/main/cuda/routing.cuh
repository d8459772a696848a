// MoE routers on the GPU: device twins of org.moespark.ops.Routing (softmaxTopK, topKSoftmax,
// sigmoidGroupedTopK). Kernels never allocate: the JNI glue passes device pointers, sizes and a
// stream. Java side: org.moespark.ops.RoutingGpu (argument checks, documentation of the semantics).
//
// Layout: L lanes per token (L a power of two ≤ 32, 32/L tokens per warp), lane q of a token owns
// the kRoutingVpt contiguous experts [q·16, q·16 + 16) in registers (16-byte vector loads where the
// row alignment allows). Top-k = K rounds of an L-lane butterfly arg-max over (value, expert) with
// the lower expert index winning equal values: the total order of the CPU reference, so ids are
// identical whenever the scores are. No global scratch, no atomics; shared memory holds only the
// per-token group scores and the K selected (id, weight) pairs.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace moespark {

// Experts per lane.
constexpr int kRoutingVpt = 16;
// Largest expert count (32 lanes x 16).
constexpr int kRoutingMaxExperts = 32 * kRoutingVpt;

// Router variants, shared with org.moespark.ops.RoutingGpu.
enum RoutingMode : int {
  kRouteSoftmaxTopK = 0,   // softmax over E, top-k of the probabilities, optional renormalisation
  kRouteTopKSoftmax = 1,   // top-k of the logits, softmax over the k selected (GPT-OSS)
  kRouteSigmoidGroup = 2,  // DeepSeek-V3 noaux_tc: sigmoid, bias for selection, group-limited top-k
};

struct RoutingArgs {
  const void* logits;    // [T, E] fp32, or bf16 bits when bf16
  bool bf16;
  int64_t tokens;        // T
  int32_t experts;       // E in [1, kRoutingMaxExperts]
  int32_t top_k;         // K in [1, E]
  int32_t mode;          // RoutingMode
  bool renormalize;
  const float* bias;     // [E] selection-only correction bias, or nullptr (kRouteSigmoidGroup)
  int32_t n_group;       // groups (kRouteSigmoidGroup); group size E / n_group a power of two if n_group > 1
  int32_t topk_group;    // groups kept
  float scale;           // routed scaling factor (kRouteSigmoidGroup)
  bool mask_zero;        // dropped groups' scores become 0 (HF) instead of -inf (DeepSeek reference)
  int32_t* ids;          // [T, K] out
  float* weights;        // [T, K] out
};

// Lanes per token for E experts.
int routing_lanes(int32_t experts);

// Launches the router; nothing is launched for T = 0. Returns false for an argument the kernel
// cannot take (the Java side checks first; this is the backstop).
bool launch_routing(const RoutingArgs& a, cudaStream_t stream);

}  // namespace moespark
