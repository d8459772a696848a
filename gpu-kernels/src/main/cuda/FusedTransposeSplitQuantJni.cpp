// JNI glue for org.moespark.ops.FusedTransposeSplitQuantGpu. Java has checked m, k and
// tokens_per_expert (multiples of 128 summing to m); this layer builds the per-expert block table
// (a kernel parameter) and launches.
#include <cstdint>
#include <string>

#include "fused_transpose_split_quant.cuh"
#include "jni_util.hpp"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_ops_FusedTransposeSplitQuantGpu_quantize0(
    JNIEnv* env, jclass, jboolean fp8, jlong x, jlong in_scales, jlong m, jlong k, jintArray tokens_per_expert,
    jboolean pow2, jlong out, jlong scales, jlong stream) {
  JNI_TRY {
    const jsize experts = env->GetArrayLength(tokens_per_expert);
    if (experts > kFtsqMaxExperts) throw bad_argument("more than " + std::to_string(kFtsqMaxExperts) + " experts");
    FtsqExperts ex{};
    env->GetIntArrayRegion(tokens_per_expert, 0, experts, ex.block_start);  // counts first, prefix below
    int64_t acc = 0;
    for (jsize e = 0; e < experts; ++e) {
      const int32_t n = ex.block_start[e];
      if (n < 0 || n % 128 != 0) throw bad_argument("tokens_per_expert[" + std::to_string(e) + "] = " +
                                                    std::to_string(n) + " is not a non-negative multiple of 128");
      ex.block_start[e] = static_cast<int32_t>(acc / 128);
      acc += n;
    }
    if (acc != m) throw bad_argument("tokens_per_expert sums to " + std::to_string(acc) + ", expected m = " +
                                     std::to_string(m));
    ex.block_start[experts] = static_cast<int32_t>(acc / 128);
    launch_fused_transpose_split_quant(as_ptr<const void>(x), fp8 == JNI_TRUE, as_ptr<const float>(in_scales), m, k, ex,
                                       experts, pow2 == JNI_TRUE, as_ptr<uint8_t>(out), as_ptr<float>(scales),
                                       as_stream(stream));
    check_launch("ftsq_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
