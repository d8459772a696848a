#!/usr/bin/env bash
# Builds libmoespark.so from the sources listed in Makefile (called by Maven in the compile phase).
#   build-native.sh OBJ_DIR LIB_DIR SKIP
# Without nvcc the build goes on without the library (the Java side then reports the GPU backend
# "unavailable: no native library"); with nvcc a kernel that does not compile fails the build.
set -euo pipefail
obj=$1 lib=$2 skip=${3:-false}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$skip" = "true" ]; then
  echo "[moespark-native] skipped (-Dnative.skip=true)"
  exit 0
fi
nvcc=${NVCC:-$(command -v nvcc || true)}
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc; fi
if [ -z "$nvcc" ]; then
  echo "[moespark-native] nvcc not found: building without the CUDA library"
  exit 0
fi
if [ -z "${JAVA_HOME:-}" ]; then
  JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
fi
jobs=$(nproc 2>/dev/null || echo 2)
exec make -s -C "$here" -j"$jobs" NVCC="$nvcc" JAVA_HOME="$JAVA_HOME" OBJ="$obj" LIB="$lib"
