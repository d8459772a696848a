// JNI glue for org.moespark.ops.TeMaskPermuteGpu (TE mask-map permutation). Java has checked shapes
// and sizes and allocated every buffer (scratch included); data-dependent checks run on the device.
#include <climits>
#include <cstdint>

#include "jni_util.hpp"
#include "te_mask_permute.cuh"
#include "te_permute.cuh"  // launch_te_fill_i32

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_ops_TeMaskPermuteGpu_rowIdMap0(JNIEnv* env, jclass, jlong routing_map,
                                                                       jlong tokens, jint experts, jlong bits,
                                                                       jlong prefix, jlong counts, jlong base,
                                                                       jlong status, jlong row_id_map, jlong stream) {
  JNI_TRY {
    TeMaskMapArgs a{};
    a.routing_map = as_ptr<const uint8_t>(routing_map);
    a.num_tokens = tokens;
    a.experts = experts;
    a.bits = as_ptr<uint32_t>(bits);
    a.prefix = as_ptr<int32_t>(prefix);
    a.counts = as_ptr<int32_t>(counts);
    a.base = as_ptr<int64_t>(base);
    a.status = as_ptr<int64_t>(status);
    a.row_id_map = as_ptr<int32_t>(row_id_map);
    launch_te_mask_map(a, as_stream(stream));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_TeMaskPermuteGpu_permuteRows0(JNIEnv* env, jclass, jlong inp, jlong tokens,
                                                                          jlong row_bytes, jlong row_id_map,
                                                                          jint experts, jlong probs, jlong pad_offsets,
                                                                          jlong pad_start, jlong pad_count, jlong out,
                                                                          jlong permuted_probs, jlong stream) {
  JNI_TRY {
    cudaStream_t s = as_stream(stream);
    launch_te_mask_permute_rows(as_ptr<const void>(inp), tokens, row_bytes, as_ptr<const int32_t>(row_id_map), experts,
                                as_ptr<const float>(probs), as_ptr<const int32_t>(pad_offsets), as_ptr<void>(out),
                                as_ptr<float>(permuted_probs), s);
    if (pad_start != 0) {
      launch_te_mask_zero_padding(row_bytes, as_ptr<const int32_t>(pad_start), as_ptr<const int32_t>(pad_count), experts,
                                  as_ptr<void>(out), as_ptr<float>(permuted_probs), s);
    }
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_TeMaskPermuteGpu_unpermute0(JNIEnv* env, jclass, jboolean bf16, jlong inp,
                                                                        jlong num_rows, jlong hidden, jlong row_id_map,
                                                                        jint experts, jlong merging_probs, jlong tokens,
                                                                        jlong pad_offsets, jlong out, jlong bad,
                                                                        jlong stream) {
  JNI_TRY {
    cudaStream_t s = as_stream(stream);
    launch_te_fill_i32(as_ptr<int32_t>(bad), 1, INT32_MAX, s);
    launch_te_mask_unpermute(bf16 == JNI_TRUE, as_ptr<const void>(inp), num_rows, hidden,
                             as_ptr<const int32_t>(row_id_map), experts, as_ptr<const float>(merging_probs), tokens,
                             as_ptr<const int32_t>(pad_offsets), as_ptr<void>(out), as_ptr<int32_t>(bad), s);
  }
  JNI_CATCH(env, )
}

}  // extern "C"
