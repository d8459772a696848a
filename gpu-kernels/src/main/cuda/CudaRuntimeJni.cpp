// JNI glue for org.moespark.cuda.Cuda: device discovery, streams, device/pinned memory, copies.
#include "jni_util.hpp"

#include <dlfcn.h>

#include <string>

using namespace moespark;

namespace {

// Copy between a Java primitive array and device memory. The array is pinned by the JVM only for
// the duration of a synchronous copy (pageable path: tests and small transfers; bulk data goes
// through PinnedBuffer).
void copy_array(JNIEnv* env, jobject array, jlong offset_bytes, jlong dev, jlong bytes, jlong stream, bool to_device) {
  if (bytes == 0) return;
  void* host = env->GetPrimitiveArrayCritical(static_cast<jarray>(array), nullptr);
  if (host == nullptr) throw std::bad_alloc();
  char* h = static_cast<char*>(host) + offset_bytes;
  cudaError_t err = to_device
      ? cudaMemcpyAsync(as_ptr<void>(dev), h, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, as_stream(stream))
      : cudaMemcpyAsync(h, as_ptr<void>(dev), static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, as_stream(stream));
  if (err == cudaSuccess) err = cudaStreamSynchronize(as_stream(stream));
  env->ReleasePrimitiveArrayCritical(static_cast<jarray>(array), host, to_device ? JNI_ABORT : 0);
  check_cuda(err, to_device ? "cudaMemcpyAsync(host array -> device)" : "cudaMemcpyAsync(device -> host array)");
}

}  // namespace

extern "C" {

// null when a CUDA device is usable, else the reason it is not.
JNIEXPORT jstring JNICALL Java_org_moespark_cuda_Cuda_probe0(JNIEnv* env, jclass) {
  JNI_TRY {
    // The statically linked runtime loads the driver library itself; name its absence plainly.
    void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (driver == nullptr) driver = dlopen("libcuda.so.1", RTLD_LAZY);
    if (driver == nullptr) return env->NewStringUTF("no NVIDIA driver: libcuda.so.1 not found");
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      std::string reason = std::string("no usable CUDA driver or device: ") + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")";
      return env->NewStringUTF(reason.c_str());
    }
    if (count == 0) return env->NewStringUTF("no CUDA device found");
    return nullptr;
  }
  JNI_CATCH(env, nullptr)
}

JNIEXPORT jint JNICALL Java_org_moespark_cuda_Cuda_deviceCount0(JNIEnv* env, jclass) {
  JNI_TRY {
    int count = 0;
    CUDA_CHECK(cudaGetDeviceCount(&count));
    return count;
  }
  JNI_CATCH(env, 0)
}

// "name|major|minor|totalMemBytes|smCount"
JNIEXPORT jstring JNICALL Java_org_moespark_cuda_Cuda_deviceInfo0(JNIEnv* env, jclass, jint device) {
  JNI_TRY {
    cudaDeviceProp p{};
    CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    std::string s = std::string(p.name) + "|" + std::to_string(p.major) + "|" + std::to_string(p.minor) + "|" +
                    std::to_string(p.totalGlobalMem) + "|" + std::to_string(p.multiProcessorCount);
    return env->NewStringUTF(s.c_str());
  }
  JNI_CATCH(env, nullptr)
}

JNIEXPORT jint JNICALL Java_org_moespark_cuda_Cuda_driverVersion0(JNIEnv* env, jclass) {
  JNI_TRY {
    int v = 0;
    CUDA_CHECK(cudaDriverGetVersion(&v));
    return v;
  }
  JNI_CATCH(env, 0)
}

JNIEXPORT jint JNICALL Java_org_moespark_cuda_Cuda_runtimeVersion0(JNIEnv* env, jclass) {
  JNI_TRY {
    int v = 0;
    CUDA_CHECK(cudaRuntimeGetVersion(&v));
    return v;
  }
  JNI_CATCH(env, 0)
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_setDevice0(JNIEnv* env, jclass, jint device) {
  JNI_TRY { CUDA_CHECK(cudaSetDevice(device)); }
  JNI_CATCH(env, )
}

JNIEXPORT jint JNICALL Java_org_moespark_cuda_Cuda_getDevice0(JNIEnv* env, jclass) {
  JNI_TRY {
    int d = 0;
    CUDA_CHECK(cudaGetDevice(&d));
    return d;
  }
  JNI_CATCH(env, 0)
}

JNIEXPORT jlongArray JNICALL Java_org_moespark_cuda_Cuda_memInfo0(JNIEnv* env, jclass) {
  JNI_TRY {
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    jlongArray out = env->NewLongArray(2);
    if (out == nullptr) return nullptr;
    jlong v[2] = {static_cast<jlong>(free_b), static_cast<jlong>(total_b)};
    env->SetLongArrayRegion(out, 0, 2, v);
    return out;
  }
  JNI_CATCH(env, nullptr)
}

JNIEXPORT jlong JNICALL Java_org_moespark_cuda_Cuda_streamCreate0(JNIEnv* env, jclass) {
  JNI_TRY {
    cudaStream_t s = nullptr;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return static_cast<jlong>(reinterpret_cast<intptr_t>(s));
  }
  JNI_CATCH(env, 0)
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_streamDestroy0(JNIEnv* env, jclass, jlong s) {
  JNI_TRY { CUDA_CHECK(cudaStreamDestroy(as_stream(s))); }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_streamSynchronize0(JNIEnv* env, jclass, jlong s) {
  JNI_TRY { CUDA_CHECK(cudaStreamSynchronize(as_stream(s))); }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_deviceSynchronize0(JNIEnv* env, jclass) {
  JNI_TRY { CUDA_CHECK(cudaDeviceSynchronize()); }
  JNI_CATCH(env, )
}

// Keeps freed stream-ordered memory in the device's default pool instead of returning it to the
// driver at every synchronization (the default threshold 0 makes every cudaMallocAsync after a sync
// map memory again: hundreds of microseconds for large buffers).
JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_retainPoolMemory0(JNIEnv* env, jclass, jint device) {
  JNI_TRY {
    cudaMemPool_t pool = nullptr;
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t threshold = UINT64_MAX;
    CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  }
  JNI_CATCH(env, )
}

JNIEXPORT jlong JNICALL Java_org_moespark_cuda_Cuda_mallocAsync0(JNIEnv* env, jclass, jlong bytes, jlong s) {
  JNI_TRY {
    void* p = nullptr;
    CUDA_CHECK(cudaMallocAsync(&p, static_cast<size_t>(bytes), as_stream(s)));
    return static_cast<jlong>(reinterpret_cast<intptr_t>(p));
  }
  JNI_CATCH(env, 0)
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_freeAsync0(JNIEnv* env, jclass, jlong ptr, jlong s) {
  JNI_TRY { CUDA_CHECK(cudaFreeAsync(as_ptr<void>(ptr), as_stream(s))); }
  JNI_CATCH(env, )
}

JNIEXPORT jlong JNICALL Java_org_moespark_cuda_Cuda_mallocHost0(JNIEnv* env, jclass, jlong bytes) {
  JNI_TRY {
    void* p = nullptr;
    CUDA_CHECK(cudaMallocHost(&p, static_cast<size_t>(bytes)));
    return static_cast<jlong>(reinterpret_cast<intptr_t>(p));
  }
  JNI_CATCH(env, 0)
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_freeHost0(JNIEnv* env, jclass, jlong ptr) {
  JNI_TRY { CUDA_CHECK(cudaFreeHost(as_ptr<void>(ptr))); }
  JNI_CATCH(env, )
}

JNIEXPORT jobject JNICALL Java_org_moespark_cuda_Cuda_wrapAddress0(JNIEnv* env, jclass, jlong addr, jlong bytes) {
  JNI_TRY { return env->NewDirectByteBuffer(as_ptr<void>(addr), bytes); }
  JNI_CATCH(env, nullptr)
}

// kind: cudaMemcpyKind (1 H2D, 2 D2H, 3 D2D, 4 default); asynchronous on the stream.
JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_memcpyAsync0(JNIEnv* env, jclass, jlong dst, jlong src, jlong bytes,
                                                              jint kind, jlong s) {
  JNI_TRY {
    if (bytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(as_ptr<void>(dst), as_ptr<const void>(src), static_cast<size_t>(bytes),
                               static_cast<cudaMemcpyKind>(kind), as_stream(s)));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_memsetAsync0(JNIEnv* env, jclass, jlong ptr, jint value, jlong bytes,
                                                              jlong s) {
  JNI_TRY {
    if (bytes == 0) return;
    CUDA_CHECK(cudaMemsetAsync(as_ptr<void>(ptr), value, static_cast<size_t>(bytes), as_stream(s)));
  }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_copyArrayToDevice0(JNIEnv* env, jclass, jobject array, jlong off,
                                                                    jlong dev, jlong bytes, jlong s) {
  JNI_TRY { copy_array(env, array, off, dev, bytes, s, true); }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_copyDeviceToArray0(JNIEnv* env, jclass, jlong dev, jobject array,
                                                                    jlong off, jlong bytes, jlong s) {
  JNI_TRY { copy_array(env, array, off, dev, bytes, s, false); }
  JNI_CATCH(env, )
}

// Events for timing benchmarks.
JNIEXPORT jlong JNICALL Java_org_moespark_cuda_Cuda_eventCreate0(JNIEnv* env, jclass) {
  JNI_TRY {
    cudaEvent_t e = nullptr;
    CUDA_CHECK(cudaEventCreate(&e));
    return static_cast<jlong>(reinterpret_cast<intptr_t>(e));
  }
  JNI_CATCH(env, 0)
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_eventDestroy0(JNIEnv* env, jclass, jlong e) {
  JNI_TRY { CUDA_CHECK(cudaEventDestroy(reinterpret_cast<cudaEvent_t>(static_cast<intptr_t>(e)))); }
  JNI_CATCH(env, )
}

JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_eventRecord0(JNIEnv* env, jclass, jlong e, jlong s) {
  JNI_TRY { CUDA_CHECK(cudaEventRecord(reinterpret_cast<cudaEvent_t>(static_cast<intptr_t>(e)), as_stream(s))); }
  JNI_CATCH(env, )
}

// Blocks the calling thread until the work recorded before the event is done (pipelined copies).
JNIEXPORT void JNICALL Java_org_moespark_cuda_Cuda_eventSynchronize0(JNIEnv* env, jclass, jlong e) {
  JNI_TRY { CUDA_CHECK(cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(static_cast<intptr_t>(e)))); }
  JNI_CATCH(env, )
}

JNIEXPORT jfloat JNICALL Java_org_moespark_cuda_Cuda_eventElapsedMs0(JNIEnv* env, jclass, jlong start, jlong stop) {
  JNI_TRY {
    float ms = 0.f;
    CUDA_CHECK(cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(static_cast<intptr_t>(stop))));
    CUDA_CHECK(cudaEventElapsedTime(&ms, reinterpret_cast<cudaEvent_t>(static_cast<intptr_t>(start)),
                                    reinterpret_cast<cudaEvent_t>(static_cast<intptr_t>(stop))));
    return ms;
  }
  JNI_CATCH(env, 0.f)
}

}  // extern "C"
