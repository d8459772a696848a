// The JNI side of the grouped GEMMs' shared arguments (bf16, FP8, FP4): the schedule and the epilogue fields of
// GroupedGemmArgs, filled from the Java arguments every gemm0 receives in the same order. Included by the
// *Jni.cpp files only.
#pragma once

#include <string>

#include "grouped_gemm.cuh"
#include "jni_util.hpp"

namespace moespark {

// n, k, experts, meta, total_tiles and the epilogue (bias, c, ldc, kind, roundings, activation, FP8 Q/DQ scale) of
// `g`; throws bad_argument for an unknown epilogue ordinal (`who` names the Java class in the message).
inline void set_schedule_and_epilogue(GroupedGemmArgs& g, const char* who, jint n, jint k, jint experts, jlong meta,
                                      jint total_tiles, jlong bias, jlong c, jlong ldc, jint epilogue,
                                      jboolean round_bf16, jboolean act_silu, jfloat limit, jfloat alpha, jfloat beta,
                                      jlong mul_scale) {
  if (epilogue < 0 || epilogue > 2) {
    throw bad_argument(std::string(who) + ": unknown epilogue " + std::to_string(epilogue));
  }
  g.n = n;
  g.k = k;
  g.experts = experts;
  g.meta = as_ptr<const int32_t>(meta);
  g.total_tiles = total_tiles;
  g.bias = as_ptr<const float>(bias);
  g.c = as_ptr<void>(c);
  g.ldc = ldc;
  g.epilogue = static_cast<GemmEpilogue>(epilogue);
  g.round_bf16 = round_bf16 == JNI_TRUE ? 1 : 0;
  g.act_silu = act_silu == JNI_TRUE ? 1 : 0;
  g.limit = limit;
  g.alpha = alpha;
  g.beta = beta;
  g.mul_scale = as_ptr<const float>(mul_scale);
}

}  // namespace moespark
