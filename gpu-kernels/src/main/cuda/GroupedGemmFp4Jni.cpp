// JNI glue for org.moespark.layer.GroupedGemmFp4 (grouped GEMM with FP4 weights dequantized in the kernel).
// Java has checked every shape, stride, alignment and buffer size; this file launches and maps errors to
// Java exceptions (a device without wgmma → RuntimeException naming the requirement).
#include <stdexcept>
#include <string>

#include "grouped_gemm_fp4.cuh"
#include "grouped_gemm_jni.hpp"
#include "jni_util.hpp"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_layer_GroupedGemmFp4_gemm0(
    JNIEnv* env, jclass, jlong a, jlong lda, jlong b, jlong ldb, jlong scales, jlong lds, jlong col_scale,
    jint format, jint n, jint k, jint experts, jlong meta, jint total_tiles, jlong bias, jlong c, jlong ldc,
    jint epilogue, jboolean round_bf16, jboolean act_silu, jfloat limit, jfloat alpha, jfloat beta, jlong rows,
    jint variant, jlong stream) {
  JNI_TRY {
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
    set_schedule_and_epilogue(args.g, "GroupedGemmFp4", n, k, experts, meta, total_tiles, bias, c, ldc, epilogue,
                              round_bf16, act_silu, limit, alpha, beta, 0);
    args.g.rows = rows;
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
