// JNI glue for org.moespark.ops.RoutingGpu. Java has checked shapes, sizes and the group layout;
// this layer fills the argument block, launches and maps errors to Java exceptions.
#include <cstdint>

#include "jni_util.hpp"
#include "routing.cuh"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_ops_RoutingGpu_route0(JNIEnv* env, jclass, jint mode, jlong logits,
                                                             jboolean bf16, jlong tokens, jint experts, jint top_k,
                                                             jboolean renormalize, jlong bias, jint n_group,
                                                             jint topk_group, jfloat scale, jboolean mask_zero,
                                                             jlong ids, jlong weights, jlong stream) {
  JNI_TRY {
    RoutingArgs a{};
    a.logits = as_ptr<const void>(logits);
    a.bf16 = bf16 == JNI_TRUE;
    a.tokens = tokens;
    a.experts = experts;
    a.top_k = top_k;
    a.mode = mode;
    a.renormalize = renormalize == JNI_TRUE;
    a.bias = as_ptr<const float>(bias);
    a.n_group = n_group;
    a.topk_group = topk_group;
    a.scale = scale;
    a.mask_zero = mask_zero == JNI_TRUE;
    a.ids = as_ptr<int32_t>(ids);
    a.weights = as_ptr<float>(weights);
    if (!launch_routing(a, as_stream(stream))) throw bad_argument("RoutingGpu: unsupported routing arguments");
    check_launch("routing_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
