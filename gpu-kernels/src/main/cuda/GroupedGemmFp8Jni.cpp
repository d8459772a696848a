// JNI glue for org.moespark.layer.GroupedGemmFp8 (grouped FP8 block-scaled GEMM over experts). Java has
// checked every shape, stride, alignment and buffer size; this file launches and maps errors to Java
// exceptions (a device without FP8 wgmma → RuntimeException naming the requirement).
#include <stdexcept>
#include <string>

#include "grouped_gemm_fp8.cuh"
#include "grouped_gemm_jni.hpp"
#include "jni_util.hpp"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_layer_GroupedGemmFp8_gemm0(
    JNIEnv* env, jclass, jlong a, jlong a_rows, jlong lda, jlong sa, jlong b, jlong ldb, jlong sb, jint n, jint k,
    jint experts, jlong meta, jint total_tiles, jlong bias, jlong c, jlong ldc, jint epilogue, jboolean round_bf16,
    jboolean act_silu, jfloat limit, jfloat alpha, jfloat beta, jlong mul_scale, jint variant, jlong stream) {
  JNI_TRY {
    GroupedGemmFp8Args args{};
    args.a = as_ptr<const uint8_t>(a);
    args.a_rows = a_rows;
    args.lda = lda;
    args.sa = as_ptr<const float>(sa);
    args.b = as_ptr<const uint8_t>(b);
    args.ldb = ldb;
    args.sb = as_ptr<const float>(sb);
    set_schedule_and_epilogue(args.g, "GroupedGemmFp8", n, k, experts, meta, total_tiles, bias, c, ldc, epilogue,
                              round_bf16, act_silu, limit, alpha, beta, mul_scale);
    args.variant = variant;
    cudaError_t err = launch_grouped_gemm_fp8(args, as_stream(stream));
    if (err == cudaErrorInvalidValue && variant >= 3) {
      throw std::runtime_error(
          "GroupedGemmFp8: the driver could not encode the TMA tensor maps (cuTensorMapEncodeTiled) for variants 3-5; "
          "variant 2 (moespark.gemm.fp8.variant=2) needs none");
    }
    if (err == cudaErrorNotSupported) {
      throw std::runtime_error(
          "GroupedGemmFp8: unsupported device: the FP8 grouped GEMM needs a Hopper GPU (sm_90: FP8 wgmma); "
          "use the bf16 GroupedGemm elsewhere");
    }
    check_cuda(err, "grouped_gemm_fp8 launch setup");
    check_launch("grouped_gemm_fp8_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
