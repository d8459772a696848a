// JNI glue for org.moespark.layer.MoeLayerGpu (combine and benchmark fill kernels). Java has checked
// shapes and sizes; this file launches and maps errors to Java exceptions.
#include <string>

#include "jni_util.hpp"
#include "moe_layer.cuh"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_layer_MoeLayerGpu_combine0(
    JNIEnv* env, jclass, jlong o, jlong ldo, jboolean o_bf16, jlong ids, jlong weights, jlong rowmap, jint top_k,
    jint experts, jlong tokens, jlong hidden, jlong shared, jlong lds, jlong x, jlong shared_gate, jboolean bf16,
    jlong y, jlong stream) {
  JNI_TRY {
    if (top_k < 1 || top_k > kCombineMaxTopK) {
      throw bad_argument("MoeLayerGpu.combine: topK must be in [1, " + std::to_string(kCombineMaxTopK) + "], got " +
                         std::to_string(top_k));
    }
    CombineArgs a{};
    a.o = as_ptr<const void>(o);
    a.ldo = ldo;
    a.o_bf16 = o_bf16 == JNI_TRUE ? 1 : 0;
    a.ids = as_ptr<const int32_t>(ids);
    a.weights = as_ptr<const float>(weights);
    a.rowmap = as_ptr<const int32_t>(rowmap);
    a.top_k = top_k;
    a.experts = experts;
    a.tokens = tokens;
    a.hidden = hidden;
    a.shared = as_ptr<const void>(shared);
    a.lds = lds;
    a.x = as_ptr<const float>(x);
    a.shared_gate = as_ptr<const float>(shared_gate);
    a.bf16 = bf16 == JNI_TRUE ? 1 : 0;
    a.y = as_ptr<float>(y);
    launch_moe_combine(a, as_stream(stream));
    check_launch("moe_combine_kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_layer_MoeLayerGpu_fillRandomBf16Native(JNIEnv* env, jclass, jlong p, jlong n,
                                                                           jlong seed, jfloat scale, jlong stream) {
  JNI_TRY {
    launch_fill_random_bf16(as_ptr<uint16_t>(p), n, static_cast<uint64_t>(seed), scale, as_stream(stream));
    check_launch("fill_random_bf16_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
