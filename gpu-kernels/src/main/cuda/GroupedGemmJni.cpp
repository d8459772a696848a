// JNI glue for org.moespark.layer.GroupedGemm (grouped bf16 GEMM over experts). Java has checked
// every shape, stride and buffer size; this file launches and maps errors to Java exceptions.
#include "grouped_gemm.cuh"
#include "grouped_gemm_jni.hpp"
#include "jni_util.hpp"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_layer_GroupedGemm_gemm0(
    JNIEnv* env, jclass, jlong a, jlong lda, jlong b, jlong ldb, jint n, jint k, jint experts, jlong meta,
    jint total_tiles, jlong bias, jlong c, jlong ldc, jint epilogue, jboolean round_bf16, jboolean act_silu,
    jfloat limit, jfloat alpha, jfloat beta, jlong mul_scale, jint variant, jlong rows, jlong stream) {
  JNI_TRY {
    GroupedGemmArgs args{};
    set_schedule_and_epilogue(args, "GroupedGemm", n, k, experts, meta, total_tiles, bias, c, ldc, epilogue,
                              round_bf16, act_silu, limit, alpha, beta, mul_scale);
    args.a = as_ptr<const uint16_t>(a);
    args.lda = lda;
    args.b = as_ptr<const uint16_t>(b);
    args.ldb = ldb;
    args.variant = variant;
    args.rows = rows;
    launch_grouped_gemm(args, as_stream(stream));
    check_launch("grouped_gemm_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
