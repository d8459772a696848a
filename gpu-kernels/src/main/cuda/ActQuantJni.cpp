// JNI glue for org.moespark.formats.ActQuantGpu (FP8 1x128 activation quantization).
#include <cstdint>
#include <string>

#include "act_quant.cuh"
#include "jni_util.hpp"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_formats_ActQuantGpu_quantize0(JNIEnv* env, jclass, jint rule, jboolean bf16,
                                                                     jlong x, jlong rows, jlong cols, jboolean pow2,
                                                                     jlong q, jlong scales, jlong stream) {
  JNI_TRY {
    if (!launch_act_quant_1x128(rule, bf16 == JNI_TRUE, as_ptr<const void>(x), rows, cols, pow2 == JNI_TRUE,
                                as_ptr<uint8_t>(q), as_ptr<float>(scales), as_stream(stream))) {
      throw bad_argument("ActQuantGpu: unknown scale rule " + std::to_string(rule));
    }
    check_launch("act_quant_kernel");
  }
  JNI_CATCH(env, )
}

}  // extern "C"
