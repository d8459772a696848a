// JNI glue for org.moespark.ops.TePermuteGpu (TE index-map moe_permute / moe_unpermute). Java has
// checked shapes, sizes and alignment and allocated every buffer (scratch included).
#include <climits>
#include <cstdint>

#include "jni_util.hpp"
#include "te_permute.cuh"

using namespace moespark;

extern "C" {

JNIEXPORT jlong JNICALL Java_org_moespark_ops_TePermuteGpu_sortTempBytes0(JNIEnv* env, jclass, jlong n) {
  JNI_TRY { return static_cast<jlong>(te_index_sort_temp_bytes(n)); }
  JNI_CATCH(env, 0)
}

JNIEXPORT void JNICALL Java_org_moespark_ops_TePermuteGpu_rowIdMap0(JNIEnv* env, jclass, jlong indices, jlong tokens,
                                                                   jint top_k, jlong num_out, jlong keys_out,
                                                                   jlong pos_in, jlong pos_out, jlong sort_temp,
                                                                   jlong sort_temp_bytes, jlong row_id_map,
                                                                   jlong dup_flag, jlong stream) {
  JNI_TRY {
    TeIndexMapArgs a{};
    a.indices = as_ptr<const int32_t>(indices);
    a.num_tokens = tokens;
    a.top_k = top_k;
    a.num_out = num_out;
    a.keys_out = as_ptr<uint32_t>(keys_out);
    a.pos_in = as_ptr<int32_t>(pos_in);
    a.pos_out = as_ptr<int32_t>(pos_out);
    a.sort_temp = as_ptr<void>(sort_temp);
    a.sort_temp_bytes = static_cast<size_t>(sort_temp_bytes);
    a.row_id_map = as_ptr<int32_t>(row_id_map);
    a.dup_flag = as_ptr<int32_t>(dup_flag);
    launch_te_index_map(a, as_stream(stream));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_TePermuteGpu_permuteRows0(JNIEnv* env, jclass, jlong inp, jlong tokens,
                                                                      jlong row_bytes, jlong row_id_map, jint top_k,
                                                                      jlong out, jlong stream) {
  JNI_TRY {
    launch_te_index_permute_rows(as_ptr<const void>(inp), tokens, row_bytes, as_ptr<const int32_t>(row_id_map), top_k,
                                 as_ptr<void>(out), as_stream(stream));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_TePermuteGpu_unpermute0(JNIEnv* env, jclass, jboolean bf16,
                                                                    jboolean bf16_steps, jlong inp, jlong num_rows,
                                                                    jlong hidden, jlong row_id_map, jlong probs,
                                                                    jlong tokens, jint top_k, jlong out, jlong bad,
                                                                    jlong stream) {
  JNI_TRY {
    cudaStream_t s = as_stream(stream);
    launch_te_fill_i32(as_ptr<int32_t>(bad), 1, INT32_MAX, s);
    launch_te_index_unpermute(bf16 == JNI_TRUE, bf16_steps == JNI_TRUE, as_ptr<const void>(inp), num_rows, hidden,
                              as_ptr<const int32_t>(row_id_map), as_ptr<const float>(probs), tokens, top_k,
                              as_ptr<void>(out), as_ptr<int32_t>(bad), s);
  }
  JNI_CATCH(env, )
}

}  // extern "C"
