// JNI glue for org.moespark.ops.MoePermuteGpu (Paddle moe_permute / moe_unpermute on the GPU).
// Java has checked shapes and sizes; this layer validates the routemap on the device (ids and
// duplicates), launches, and maps errors to Java exceptions.
#include <cstdint>
#include <string>
#include <vector>

#include "jni_util.hpp"
#include "moe_permute.cuh"

using namespace moespark;


extern "C" {

namespace {

// A per-thread page-locked buffer for small device→host readbacks (kept for the thread's lifetime).
int32_t* pinned_scratch(size_t bytes) {
  struct Scratch {
    void* p = nullptr;
    size_t size = 0;
    ~Scratch() {
      if (p != nullptr) cudaFreeHost(p);
    }
  };
  thread_local Scratch scratch;
  if (scratch.size < bytes) {
    if (scratch.p != nullptr) cudaFreeHost(scratch.p);
    scratch.p = nullptr;
    scratch.size = 0;
    CUDA_CHECK(cudaMallocHost(&scratch.p, bytes));
    scratch.size = bytes;
  }
  return static_cast<int32_t*>(scratch.p);
}

PermuteMapsArgs maps_args(jlong route, jlong probs, jlong tokens, jint top_k, jint experts, jlong expert_base,
                          jlong block_counts, jlong rowmap, jlong prob_out, jlong src_row, jlong expert_of_row) {
  PermuteMapsArgs a{};
  a.route = as_ptr<const int32_t>(route);
  a.probs = as_ptr<const float>(probs);
  a.tokens = tokens;
  a.top_k = top_k;
  a.experts = experts;
  a.expert_base = as_ptr<const int64_t>(expert_base);
  a.block_counts = as_ptr<const int32_t>(block_counts);
  a.rowmap = as_ptr<int32_t>(rowmap);
  a.prob_out = as_ptr<float>(prob_out);
  a.src_row = as_ptr<int32_t>(src_row);
  a.expert_of_row = as_ptr<int32_t>(expert_of_row);
  return a;
}

}  // namespace

// Validation and passes 1+2: two launches, one small pinned readback, one host synchronization.
// Returns {first bad-id token, first duplicate token, first expert whose count != tokens_per_expert,
// counts[E]...} (INT32_MAX = none); expert_base and the padding rows are filled on the device.
JNIEXPORT jintArray JNICALL Java_org_moespark_ops_MoePermuteGpu_prepare0(
    JNIEnv* env, jclass, jlong route, jlong tokens, jint top_k, jint experts, jintArray tokens_per_expert, jint align,
    jlong block_counts, jlong block_flags, jlong ticket, jlong expert_base, jlong result, jlong src_row,
    jlong expert_of_row, jlong prob_out, jlong stream) {
  JNI_TRY {
    if (experts > kMaxPermuteExperts) throw bad_argument("numExperts above " + std::to_string(kMaxPermuteExperts));
    cudaStream_t s = as_stream(stream);
    ExpertCounts tpe{};
    if (tokens_per_expert != nullptr) env->GetIntArrayRegion(tokens_per_expert, 0, experts, tpe.count);
    PermuteScanArgs a{};
    a.counted = tokens_per_expert == nullptr ? 1 : 0;
    a.experts = experts;
    a.nblocks = permute_num_blocks(tokens);
    a.align = align;
    a.block_counts = as_ptr<int32_t>(block_counts);
    a.block_flags = as_ptr<int32_t>(block_flags);
    a.ticket = as_ptr<unsigned>(ticket);
    a.expert_base = as_ptr<int64_t>(expert_base);
    a.result = as_ptr<int32_t>(result);
    a.src_row = as_ptr<int32_t>(src_row);
    a.expert_of_row = as_ptr<int32_t>(expert_of_row);
    a.prob_out = as_ptr<float>(prob_out);
    launch_permute_prepare(a, as_ptr<const int32_t>(route), tokens, top_k, tpe, s);
    // Small readback through a per-thread pinned buffer: pageable copies cost tens of microseconds here.
    int32_t* host = pinned_scratch(sizeof(int32_t) * (3 + kMaxPermuteExperts));
    CUDA_CHECK(cudaMemcpyAsync(host, a.result, sizeof(int32_t) * (3 + experts), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    jintArray out = env->NewIntArray(3 + experts);
    if (out != nullptr) env->SetIntArrayRegion(out, 0, 3 + experts, host);
    return out;
  }
  JNI_CATCH(env, nullptr)
}

// Pass 3 (asynchronous): rowmap [S,E], and prob / expert index / source row of every routed row
// (the padding rows were filled by pass 2).
JNIEXPORT void JNICALL Java_org_moespark_ops_MoePermuteGpu_assign0(JNIEnv* env, jclass, jlong route, jlong probs,
                                                                 jlong tokens, jint top_k, jint experts,
                                                                 jlong expert_base, jlong block_counts,
                                                                 jlong rowmap, jlong prob_out, jlong src_row,
                                                                 jlong expert_of_row, jlong stream) {
  JNI_TRY {
    launch_permute_assign(maps_args(route, probs, tokens, top_k, experts, expert_base, block_counts, rowmap, prob_out,
                                    src_row, expert_of_row),
                          as_stream(stream));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_MoePermuteGpu_gatherRows0(JNIEnv* env, jclass, jlong src, jlong src_rows,
                                                                     jlong row_bytes, jlong src_row, jlong rows,
                                                                     jlong out, jboolean zero_missing, jlong stream) {
  JNI_TRY {
    launch_gather_rows(as_ptr<const void>(src), src_rows, row_bytes, as_ptr<const int32_t>(src_row), rows,
                       as_ptr<void>(out), zero_missing == JNI_TRUE, as_stream(stream));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_MoePermuteGpu_scatterRows0(JNIEnv* env, jclass, jlong src, jlong row_bytes,
                                                                      jlong rowmap, jlong tokens, jint experts,
                                                                      jlong src_row, jlong rows, jlong out,
                                                                      jlong stream) {
  JNI_TRY {
    launch_scatter_rows(as_ptr<const void>(src), row_bytes, as_ptr<const int32_t>(rowmap), tokens, experts,
                        as_ptr<const int32_t>(src_row), rows, as_ptr<void>(out), as_stream(stream));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_MoePermuteGpu_unpermute0(JNIEnv* env, jclass, jboolean bf16, jlong xu,
                                                                    jlong rows, jlong hidden, jlong rowmap, jlong tokens,
                                                                    jint experts, jlong prob, jboolean weighted, jlong out,
                                                                    jlong stream) {
  JNI_TRY {
    if (bf16 == JNI_TRUE) {
      launch_unpermute_bf16(as_ptr<const uint16_t>(xu), rows, hidden, as_ptr<const int32_t>(rowmap), tokens, experts,
                            as_ptr<const float>(prob), weighted == JNI_TRUE, as_ptr<uint16_t>(out), as_stream(stream));
    } else {
      launch_unpermute_f32(as_ptr<const float>(xu), rows, hidden, as_ptr<const int32_t>(rowmap), tokens, experts,
                           as_ptr<const float>(prob), weighted == JNI_TRUE, as_ptr<float>(out), as_stream(stream));
    }
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_MoePermuteGpu_unpermuteProbs0(JNIEnv* env, jclass, jlong route,
                                                                         jlong tokens, jint top_k, jint experts,
                                                                         jlong rowmap, jlong prob, jlong out,
                                                                         jlong stream) {
  JNI_TRY {
    launch_unpermute_probs(as_ptr<const int32_t>(route), tokens, top_k, experts, as_ptr<const int32_t>(rowmap),
                           as_ptr<const float>(prob), as_ptr<float>(out), as_stream(stream));
  }
  JNI_CATCH(env, )
}

}  // extern "C"
