// JNI glue for org.moespark.layer.GroupedGemmFp4 (grouped GEMM with FP4 weights dequantized in the kernel).
// Java has checked every shape, stride, alignment and buffer size; this file launches and maps errors to
// Java exceptions (a device without wgmma → RuntimeException naming the requirement).
#include <stdexcept>
#include <string>

#include "grouped_gemm_fp4.cuh"
#include "jni_util.hpp"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_layer_GroupedGemmFp4_gemm0(
    JNIEnv* env, jclass, jlong a, jlong lda, jlong b, jlong ldb, jlong scales, jlong lds, jlong col_scale,
    jint format, jint n, jint k, jint experts, jlong meta, jint total_tiles, jlong bias, jlong c, jlong ldc,
    jint epilogue, jboolean round_bf16, jboolean act_silu, jfloat limit, jfloat alpha, jfloat beta, jlong rows, jint variant,
    jlong stream) {
  JNI_TRY {
    if (epilogue < 0 || epilogue > 2) {
      throw bad_argument("GroupedGemmFp4: unknown epilogue " + std::to_string(epilogue));
    }
    if (format < 0 || format > 1) {
      throw bad_argument("GroupedGemmFp4: unknown format " + std::to_string(format));
    }
    GroupedGemmFp4Args args{};
    args.a = as_ptr<const uint16_t>(a);
    args.lda = lda;
    args.b = as_ptr<const uint8_t>(b);
    args.ldb = ldb;
    args.scales = as_ptr<const uint8_t>(scales);
    args.lds = lds;
    args.col_scale = as_ptr<const float>(col_scale);
    args.format = static_cast<Fp4Format>(format);
    GroupedGemmArgs& g = args.g;
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
    g.rows = rows;
    args.variant = variant;
    cudaError_t err = launch_grouped_gemm_fp4(args, as_stream(stream));
    if (err == cudaErrorInvalidValue && variant == 2) {
      throw std::runtime_error(
          "GroupedGemmFp4: the driver could not encode the TMA tensor maps (cuTensorMapEncodeTiled) for variant 2; "
          "variant 1 (moespark.gemm.fp4.variant=1) needs none");
    }
    if (err == cudaErrorNotSupported) {
      throw std::runtime_error(
          "GroupedGemmFp4: unsupported device: the FP4-weight grouped GEMM needs a Hopper GPU (sm_90: wgmma); "
          "dequantize the weights to bf16 (GroupedGemm) elsewhere");
    }
    check_cuda(err, "grouped_gemm_fp4 launch setup");
    check_launch("grouped_gemm_fp4_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
