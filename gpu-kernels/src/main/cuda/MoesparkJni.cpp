// Library entry: JNI_OnLoad caches the exception classes used by every JNI file.
#include "jni_util.hpp"

namespace moespark {

jclass g_cuda_exception = nullptr;
jclass g_illegal_argument = nullptr;
jclass g_oom = nullptr;
jclass g_runtime_exception = nullptr;
jmethodID g_cuda_exception_ctor = nullptr;

static jclass global_class(JNIEnv* env, const char* name) {
  jclass local = env->FindClass(name);
  if (local == nullptr) return nullptr;
  jclass global = static_cast<jclass>(env->NewGlobalRef(local));
  env->DeleteLocalRef(local);
  return global;
}

void throw_java(JNIEnv* env, jclass cls, const char* msg) {
  if (env->ExceptionCheck()) return;  // keep the first exception
  env->ThrowNew(cls != nullptr ? cls : g_runtime_exception, msg);
}

void throw_java(JNIEnv* env, const cuda_error& e) {
  if (env->ExceptionCheck()) return;
  jstring msg = env->NewStringUTF(e.what());
  if (msg == nullptr) return;
  jobject ex = env->NewObject(g_cuda_exception, g_cuda_exception_ctor, static_cast<jint>(e.code), msg);
  if (ex != nullptr) env->Throw(static_cast<jthrowable>(ex));
}

}  // namespace moespark

extern "C" JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM* vm, void*) {
  using namespace moespark;
  JNIEnv* env = nullptr;
  if (vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_8) != JNI_OK) return JNI_ERR;
  g_cuda_exception = global_class(env, "org/moespark/cuda/CudaException");
  g_illegal_argument = global_class(env, "java/lang/IllegalArgumentException");
  g_oom = global_class(env, "java/lang/OutOfMemoryError");
  g_runtime_exception = global_class(env, "java/lang/RuntimeException");
  if (!g_cuda_exception || !g_illegal_argument || !g_oom || !g_runtime_exception) return JNI_ERR;
  g_cuda_exception_ctor = env->GetMethodID(g_cuda_exception, "<init>", "(ILjava/lang/String;)V");
  if (g_cuda_exception_ctor == nullptr) return JNI_ERR;
  return JNI_VERSION_1_8;
}
