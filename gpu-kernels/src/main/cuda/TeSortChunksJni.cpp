// JNI glue for org.moespark.ops.TeSortChunksGpu (TE moe_sort_chunks_by_index). Java has checked the
// split sizes / sorted index and uploaded the chunk offsets.
#include <cstdint>

#include "jni_util.hpp"
#include "te_sort_chunks.cuh"

using namespace moespark;

extern "C" {

JNIEXPORT void JNICALL Java_org_moespark_ops_TeSortChunksGpu_chunkSortMap0(JNIEnv* env, jclass, jlong src_start,
                                                                          jlong dst_start, jint chunks, jlong tokens,
                                                                          jlong map, jlong stream) {
  JNI_TRY {
    launch_te_chunk_sort_map(as_ptr<const int32_t>(src_start), as_ptr<const int32_t>(dst_start), chunks, tokens,
                             as_ptr<int32_t>(map), as_stream(stream));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_ops_TeSortChunksGpu_sortRows0(JNIEnv* env, jclass, jlong inp, jlong tokens,
                                                                      jlong row_bytes, jlong map, jlong probs, jlong out,
                                                                      jlong out_probs, jlong stream) {
  JNI_TRY {
    launch_te_sort_chunks_rows(as_ptr<const void>(inp), tokens, row_bytes, as_ptr<const int32_t>(map),
                               as_ptr<const float>(probs), as_ptr<void>(out), as_ptr<float>(out_probs),
                               as_stream(stream));
  }
  JNI_CATCH(env, )
}

}  // extern "C"
