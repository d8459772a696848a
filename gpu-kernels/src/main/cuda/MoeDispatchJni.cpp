// JNI glue for org.moespark.ops.MoeDispatchGpu: permute_indices_per_token. Java has checked shapes; ids were
// produced by the GPU router.
#include <cstdint>

#include "jni_util.hpp"
#include "moe_dispatch.cuh"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_ops_MoeDispatchGpu_indices0(JNIEnv* env, jclass, jlong ids, jlong rowmap,
                                                                   jlong tokens, jint top_k, jint experts, jlong perm,
                                                                   jlong stream) {
  JNI_TRY {
    launch_dispatch_indices(as_ptr<const int32_t>(ids), as_ptr<const int32_t>(rowmap), tokens, top_k, experts,
                            as_ptr<int32_t>(perm), as_stream(stream));
    check_launch("indices_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
