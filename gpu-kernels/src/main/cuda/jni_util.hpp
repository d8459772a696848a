// JNI glue helpers shared by every *Jni.cpp file. Kernels never include this header.
//
// Every JNI entry point body is wrapped in JNI_TRY { ... } JNI_CATCH(env, ret): C++ exceptions and
// CUDA errors become typed Java exceptions (CudaException, OutOfMemoryError,
// IllegalArgumentException); nothing reaches the JVM unmapped and nothing returns a silent -1.
#pragma once

#include <jni.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

namespace moespark {

// A CUDA runtime error, carried to Java as org.moespark.cuda.CudaException.
struct cuda_error : std::runtime_error {
  cudaError_t code;
  cuda_error(cudaError_t c, const std::string& where)
      : std::runtime_error(where + ": " + cudaGetErrorName(c) + " (" + cudaGetErrorString(c) + ")"), code(c) {}
};

// A bad argument found at the JNI edge (Java checks first; this is the backstop).
struct bad_argument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Classes cached once in JNI_OnLoad (MoesparkJni.cpp).
extern jclass g_cuda_exception;     // org/moespark/cuda/CudaException
extern jclass g_illegal_argument;   // java/lang/IllegalArgumentException
extern jclass g_oom;                // java/lang/OutOfMemoryError
extern jclass g_runtime_exception;  // java/lang/RuntimeException
extern jmethodID g_cuda_exception_ctor;  // CudaException(int code, String message)

void throw_java(JNIEnv* env, const cuda_error& e);
void throw_java(JNIEnv* env, jclass cls, const char* msg);

inline void check_cuda(cudaError_t err, const char* where) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state where possible
    if (err == cudaErrorMemoryAllocation) throw std::bad_alloc();
    throw cuda_error(err, where);
  }
}

// After every kernel launch.
inline void check_launch(const char* kernel) { check_cuda(cudaGetLastError(), kernel); }

inline cudaStream_t as_stream(jlong s) { return reinterpret_cast<cudaStream_t>(static_cast<intptr_t>(s)); }
template <typename T>
inline T* as_ptr(jlong a) { return reinterpret_cast<T*>(static_cast<intptr_t>(a)); }

}  // namespace moespark

#define CUDA_CHECK(expr) ::moespark::check_cuda((expr), #expr)

#define JNI_TRY try
#define JNI_CATCH(env, ret)                                                              \
  catch (const ::moespark::cuda_error& e) {                                              \
    ::moespark::throw_java(env, e);                                                      \
    return ret;                                                                          \
  }                                                                                      \
  catch (const std::bad_alloc&) {                                                        \
    ::moespark::throw_java(env, ::moespark::g_oom, "CUDA or host allocation failed");    \
    return ret;                                                                          \
  }                                                                                      \
  catch (const std::invalid_argument& e) {                                               \
    ::moespark::throw_java(env, ::moespark::g_illegal_argument, e.what());               \
    return ret;                                                                          \
  }                                                                                      \
  catch (const std::exception& e) {                                                      \
    ::moespark::throw_java(env, ::moespark::g_runtime_exception, e.what());              \
    return ret;                                                                          \
  }                                                                                      \
  catch (...) {                                                                          \
    ::moespark::throw_java(env, ::moespark::g_runtime_exception, "unknown native error"); \
    return ret;                                                                          \
  }
