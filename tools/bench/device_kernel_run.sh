#!/usr/bin/env bash
# One device call for the grouped GEMM kernels (issue 6), as run on the H100 (benchmarks/layer-gpu.md): extracts
# the JRE (.device/jre.tar.xz, pack.sh's), runs the wgmma-tagged GPU tests in their own JVM (a faulting kernel
# poisons the CUDA context), stops there on a failure, then Fp4GemmBench (unless NOBENCH) and, with GPU_TESTS=1,
# the other gpu-tagged tests; logs under $OUT. Class path: .device/classpath (pack.sh gpu-kernels).
#   WG_T=150 BENCH_T=200 TOKENS="16384 256" GPU_TESTS=1 GPU_T=300 bash tools/bench/device_kernel_run.sh
rm -rf /tmp/jre && tar -xJf .device/jre.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
git log -1 --format=%H 2>/dev/null | tee $OUT/commit.txt
CPK="$(cat .device/classpath)"
timeout ${WG_T:-240} java -Xmx16g -jar .device/junit-console.jar execute --class-path "$CPK" --scan-class-path --include-tag wgmma --details=tree > $OUT/wgmma.log 2>&1
wrc=$?; echo "wgmma rc=$wrc"; grep -E "tests (successful|failed|found)|✘|GroupedGemmFp4 " $OUT/wgmma.log | head -40
if [ $wrc -ne 0 ]; then grep -B2 -A6 "=>" $OUT/wgmma.log | head -60; exit 1; fi
if [ -z "${NOBENCH:-}" ]; then
timeout ${BENCH_T:-240} java -Xmx16g -cp "$CPK" org.moespark.bench.Fp4GemmBench ${TOKENS:-16384 256} > $OUT/fp4-bench.txt 2>&1
echo "bench rc=$?"; cat $OUT/fp4-bench.txt
fi
if [ -n "${GPU_TESTS:-}" ]; then
timeout ${GPU_T:-300} java -Xmx16g --add-opens=java.base/java.nio=ALL-UNNAMED -jar .device/junit-console.jar execute --class-path "$CPK" --scan-class-path --include-tag gpu --exclude-tag wgmma --details=summary > $OUT/gpu.log 2>&1
echo "gpu rc=$?"; grep -E "tests (successful|failed|found)|✘" $OUT/gpu.log | head -20
fi
