// JNI glue for org.moespark.layer.GroupedGemm (grouped bf16 GEMM over experts). Java has checked
// every shape, stride and buffer size; this file launches and maps errors to Java exceptions.
#include <string>

#include "grouped_gemm.cuh"
#include "jni_util.hpp"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_layer_GroupedGemm_gemm0(
    JNIEnv* env, jclass, jlong a, jlong lda, jlong b, jlong ldb, jint n, jint k, jint experts, jlong meta,
    jint total_tiles, jlong bias, jlong c, jlong ldc, jint epilogue, jboolean round_bf16, jboolean act_silu,
    jfloat limit, jfloat alpha, jfloat beta, jlong mul_scale, jint variant, jlong rows, jlong stream) {
  JNI_TRY {
    if (epilogue < 0 || epilogue > 2) throw bad_argument("GroupedGemm: unknown epilogue " + std::to_string(epilogue));
    GroupedGemmArgs args{};
    args.a = as_ptr<const uint16_t>(a);
    args.lda = lda;
    args.b = as_ptr<const uint16_t>(b);
    args.ldb = ldb;
    args.n = n;
    args.k = k;
    args.experts = experts;
    args.meta = as_ptr<const int32_t>(meta);
    args.total_tiles = total_tiles;
    args.bias = as_ptr<const float>(bias);
    args.c = as_ptr<void>(c);
    args.ldc = ldc;
    args.epilogue = static_cast<GemmEpilogue>(epilogue);
    args.round_bf16 = round_bf16 == JNI_TRUE ? 1 : 0;
    args.act_silu = act_silu == JNI_TRUE ? 1 : 0;
    args.limit = limit;
    args.alpha = alpha;
    args.beta = beta;
    args.mul_scale = as_ptr<const float>(mul_scale);
    args.variant = variant;
    args.rows = rows;
    launch_grouped_gemm(args, as_stream(stream));
    check_launch("grouped_gemm_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
