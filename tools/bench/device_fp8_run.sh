#!/usr/bin/env bash
# One device call for the FP8 grouped GEMM's next step (issue 6; benchmarks/layer-gpu.md, 2026-12-08): the FP8 GEMM's
# wgmma tests (variant 11 included: the same bits as 1-6), then GemmTailBench at Mixtral, DeepSeek-V3 and
# Qwen3-30B-A3B shapes (routed rows) for FP8 variant 5 (the default), its probes 7-10 and variant 11, next to our bf16
# variants 4 and 5 (probe); LayerBench with FP8 variant 11 as the layer's (FFN per FP8 variant 5 and 11); ncu
# (--set full) of one FP8 variant-5 gate/up launch at Mixtral's shape; the SASS of variants 5 and 11. Logs under $OUT.
# Class path: .device/classpath (pack.sh gpu-kernels).
#   NONCU=1 NOLAYER=1 bash tools/bench/device_fp8_run.sh
rm -rf /tmp/jre && tar -xJf .device/jre.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv | tee $OUT/gpu.txt
git log -1 --format=%H 2>/dev/null | tee $OUT/commit.txt
CPK="$(cat .device/classpath)"
J="java -Xmx16g --add-opens=java.base/java.nio=ALL-UNNAMED -cp $CPK"
timeout 200 java -Xmx16g --add-opens=java.base/java.nio=ALL-UNNAMED -jar .device/junit-console.jar execute \
  --class-path "$CPK" --scan-class-path --include-tag wgmma --include-classname '.*GroupedGemmFp8GpuTest' \
  --details=tree > $OUT/wgmma-fp8.log 2>&1
wrc=$?; echo "wgmma fp8 rc=$wrc"; grep -E "tests (successful|failed|found)|✘" $OUT/wgmma-fp8.log | head -20
if [ $wrc -ne 0 ]; then grep -B2 -A6 "=>" $OUT/wgmma-fp8.log | head -60; exit 1; fi
M=4096:14336:8:2,7168:2048:256:8,2048:768:128:8
$J -Dmoespark.bench.models=$M -Dmoespark.bench.rows=routed -Dmoespark.bench.precision=fp8 \
  -Dmoespark.bench.variants=5,7,8,9,10,11 org.moespark.bench.GemmTailBench 2>&1 | tee $OUT/tail-fp8.txt
$J -Dmoespark.bench.models=$M -Dmoespark.bench.rows=routed -Dmoespark.bench.variants=4,5 \
  org.moespark.bench.GemmTailBench 2>&1 | tee $OUT/tail-bf16.txt
if [ -z "${NOLAYER:-}" ]; then
  timeout 300 $J -Dmoespark.gemm.fp8.variant=11 -Dmoespark.bench.fp8.variants=5,11 org.moespark.bench.LayerBench \
    --backend gpu > $OUT/layer.txt 2>&1
  echo "layer rc=$?"; tail -30 $OUT/layer.txt
fi
if [ -z "${NONCU:-}" ]; then
  timeout 150 /usr/local/cuda/bin/ncu --target-processes all -k regex:wide_kernel --launch-skip 1 --launch-count 1 \
    --set full $J -Dmoespark.bench.models=4096:14336:8:2 -Dmoespark.bench.rows=routed \
    -Dmoespark.bench.precision=fp8 -Dmoespark.bench.variants=5 org.moespark.bench.GemmTailBench > $OUT/ncu-v5.txt 2>&1
  echo "ncu rc=$?"
fi
SO=$(find gpu-kernels/target/classes -name '*.so' | head -1)
/usr/local/cuda/bin/cuobjdump -sass "$SO" > /tmp/all.sass 2>&1
awk '/Function : /{p = ($0 ~ /wide_kernelILi3ELi1ELi0E/)} p' /tmp/all.sass > $OUT/v5.sass
awk '/Function : /{p = ($0 ~ /db_kernel/)} p' /tmp/all.sass > $OUT/v11.sass
wc -l $OUT/v5.sass $OUT/v11.sass
