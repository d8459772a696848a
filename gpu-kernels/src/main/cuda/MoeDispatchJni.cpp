// JNI glue for org.moespark.ops.MoeDispatchGpu: the expert histogram (read back, one synchronization)
// and permute_indices_per_token. Java has checked shapes; ids were produced by the GPU router.
#include <cstdint>
#include <vector>

#include "jni_util.hpp"
#include "moe_dispatch.cuh"

using namespace moespark;

extern "C" {

JNIEXPORT jintArray JNICALL Java_org_moespark_ops_MoeDispatchGpu_histogram0(JNIEnv* env, jclass, jlong ids, jlong n,
                                                                          jint experts, jlong counts, jlong stream) {
  JNI_TRY {
    cudaStream_t s = as_stream(stream);
    int32_t* d = as_ptr<int32_t>(counts);
    launch_dispatch_histogram(as_ptr<const int32_t>(ids), n, experts, d, s);
    check_launch("histogram_kernel");
    std::vector<int32_t> host(static_cast<size_t>(experts));
    CUDA_CHECK(cudaMemcpyAsync(host.data(), d, sizeof(int32_t) * experts, cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaStreamSynchronize(s));
    jintArray out = env->NewIntArray(experts);
    if (out != nullptr) env->SetIntArrayRegion(out, 0, experts, host.data());
    return out;
  }
  JNI_CATCH(env, nullptr)
}

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
