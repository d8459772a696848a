// JNI glue for org.moespark.formats.FormatsGpu. The Java side has checked every argument (sizes,
// shapes, codec ids); the checks here are the backstop.
#include "formats.cuh"
#include "jni_util.hpp"

#include <string>

using namespace moespark;

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw bad_argument(what);
}

}  // namespace

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_encode0(JNIEnv* env, jclass, jint codec, jlong src,
                                                                    jlong dst, jlong n, jlong stream) {
  JNI_TRY {
    require(n >= 0, "FormatsGpu.encode: negative element count " + std::to_string(n));
    require(fmt::launch_encode(codec, as_ptr<const float>(src), as_ptr<void>(dst), n, as_stream(stream)),
            "FormatsGpu.encode: unknown codec " + std::to_string(codec));
    check_launch("formats encode kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_decode0(JNIEnv* env, jclass, jint codec, jlong src,
                                                                    jlong dst, jlong n, jlong stream) {
  JNI_TRY {
    require(n >= 0, "FormatsGpu.decode: negative element count " + std::to_string(n));
    require(fmt::launch_decode(codec, as_ptr<const void>(src), as_ptr<float>(dst), n, as_stream(stream)),
            "FormatsGpu.decode: unknown codec " + std::to_string(codec));
    check_launch("formats decode kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_nvfp4Quantize0(JNIEnv* env, jclass, jlong x, jlong n,
                                                                           jfloat global_scale, jlong packed,
                                                                           jlong scales, jlong stream) {
  JNI_TRY {
    require(n >= 0 && n % 16 == 0, "FormatsGpu.nvfp4Quantize: element count must be a multiple of 16, got " +
                                       std::to_string(n));
    fmt::launch_nvfp4_quantize(as_ptr<const float>(x), n, global_scale, as_ptr<uint8_t>(packed),
                               as_ptr<uint8_t>(scales), as_stream(stream));
    check_launch("nvfp4_quantize_kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_nvfp4Dequantize0(JNIEnv* env, jclass, jlong packed,
                                                                             jlong scales, jfloat global_scale,
                                                                             jlong n, jlong out, jlong stream) {
  JNI_TRY {
    require(n >= 0 && n % 16 == 0, "FormatsGpu.nvfp4Dequantize: element count must be a multiple of 16, got " +
                                       std::to_string(n));
    fmt::launch_nvfp4_dequantize(as_ptr<const uint8_t>(packed), as_ptr<const uint8_t>(scales), global_scale, n,
                                 as_ptr<float>(out), as_stream(stream));
    check_launch("nvfp4_dequantize_kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_mxQuantize0(JNIEnv* env, jclass, jint kind, jlong x,
                                                                        jlong n, jlong elements, jlong scales,
                                                                        jlong stream) {
  JNI_TRY {
    require(n >= 0 && n % 32 == 0, "FormatsGpu.mxQuantize: element count must be a multiple of 32, got " +
                                       std::to_string(n));
    require(fmt::launch_mx_quantize(kind, as_ptr<const float>(x), n, as_ptr<uint8_t>(elements),
                                    as_ptr<uint8_t>(scales), as_stream(stream)),
            "FormatsGpu.mxQuantize: unknown kind " + std::to_string(kind));
    check_launch("mx_quantize_kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_mxDequantize0(JNIEnv* env, jclass, jint kind,
                                                                          jlong elements, jlong scales, jlong n,
                                                                          jlong out, jlong stream) {
  JNI_TRY {
    require(n >= 0 && n % 32 == 0, "FormatsGpu.mxDequantize: element count must be a multiple of 32, got " +
                                       std::to_string(n));
    require(fmt::launch_mx_dequantize(kind, as_ptr<const uint8_t>(elements), as_ptr<const uint8_t>(scales), n,
                                      as_ptr<float>(out), as_stream(stream)),
            "FormatsGpu.mxDequantize: unknown kind " + std::to_string(kind));
    check_launch("mx_dequantize_kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_blockFp8Quantize0(JNIEnv* env, jclass, jint rule,
                                                                              jlong x, jlong rows, jlong cols, jint br,
                                                                              jint bc, jboolean pow2, jlong q,
                                                                              jlong scale_inv, jlong stream) {
  JNI_TRY {
    require(rows >= 0 && cols >= 0 && br >= 1 && bc >= 1, "FormatsGpu.blockFp8Quantize: bad shape [" +
                                                              std::to_string(rows) + ", " + std::to_string(cols) +
                                                              "] block " + std::to_string(br) + "x" +
                                                              std::to_string(bc));
    require(fmt::launch_block_fp8_quantize(rule, as_ptr<const float>(x), rows, cols, br, bc, pow2 == JNI_TRUE,
                                           as_ptr<uint8_t>(q), as_ptr<float>(scale_inv), as_stream(stream)),
            "FormatsGpu.blockFp8Quantize: unknown scale rule " + std::to_string(rule));
    check_launch("block_fp8_quantize_kernel");
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_formats_FormatsGpu_blockFp8Dequantize0(JNIEnv* env, jclass, jlong q,
                                                                                jlong scale_inv, jlong rows,
                                                                                jlong cols, jint br, jint bc,
                                                                                jlong out, jlong stream) {
  JNI_TRY {
    require(rows >= 0 && cols >= 0 && br >= 1 && bc >= 1, "FormatsGpu.blockFp8Dequantize: bad shape [" +
                                                              std::to_string(rows) + ", " + std::to_string(cols) +
                                                              "] block " + std::to_string(br) + "x" +
                                                              std::to_string(bc));
    fmt::launch_block_fp8_dequantize(as_ptr<const uint8_t>(q), as_ptr<const float>(scale_inv), rows, cols, br, bc,
                                     as_ptr<float>(out), as_stream(stream));
    check_launch("block_fp8_dequantize_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
