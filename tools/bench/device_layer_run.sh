#!/usr/bin/env bash
# One device call for the GPU layer (issue 6), as run on the H100 for benchmarks/layer-gpu.md (fifth session):
# extracts the JRE (.device/jre.tar.xz, pack.sh's), runs the wgmma-tagged GPU tests in their own JVM (a faulting
# kernel poisons the CUDA context) and stops there on a failure, then the other gpu-tagged tests (unless NOTESTS),
# the PyTorch baseline and LayerBench in the same call; with NCU=1 also the ncu kernel durations of the layer's
# non-GEMM steps at Qwen3 and DeepSeek-V3 shapes. Logs under $OUT. Class path: .device/classpath.
#   bash tools/bench/device_layer_run.sh            NOTESTS=1 NCU=1 bash tools/bench/device_layer_run.sh
# carry: .device/jre.tar.xz .device/lib .device/junit-console.jar .device/classpath gpu-kernels/target/classes
#        gpu-kernels/target/test-classes (about 45 MiB together)
rm -rf /tmp/jre && tar -xJf .device/jre.tar.xz -C /tmp && export PATH=/tmp/jre/bin:$PATH
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
CPK="$(cat .device/classpath)"
if [ -z "${NOTESTS:-}" ]; then
  timeout ${WG_T:-200} java -Xmx16g -jar .device/junit-console.jar execute --class-path "$CPK" --scan-class-path \
    --include-tag wgmma --details=tree > $OUT/wgmma.log 2>&1
  wrc=$?; echo "wgmma rc=$wrc"; grep -E "tests (successful|failed|found)|✘" $OUT/wgmma.log | head -20
  if [ $wrc -ne 0 ]; then exit 1; fi
  timeout ${GPU_T:-240} java -Xmx16g --add-opens=java.base/java.nio=ALL-UNNAMED -jar .device/junit-console.jar \
    execute --class-path "$CPK" --scan-class-path --include-tag gpu --exclude-tag wgmma --details=tree > $OUT/gpu.log 2>&1
  echo "gpu rc=$?"; grep -E "tests (successful|failed|found)|✘" $OUT/gpu.log | head -20
fi
timeout 150 python3 tools/bench/torch_layer_baseline.py 16384 > $OUT/torch.txt 2> $OUT/torch.err
timeout 200 java -Xmx16g -Dmoespark.bench.variants=4 -cp "$CPK" org.moespark.bench.LayerBench --backend gpu \
  --torch $OUT/torch.txt > $OUT/layer.txt 2>&1
echo "layer rc=$?"; grep -v "WARN\|InstanceBuilder" $OUT/layer.txt
if [ -n "${NCU:-}" ]; then
  for S in qwen3-30b-a3b deepseek-v3; do
    timeout 120 /usr/local/cuda/bin/ncu --target-processes all -k regex:"combine|act_quant|scatter_rows|encode_u16|routing|permute" \
      --metrics gpu__time_duration.sum --csv --print-units base java -Xmx16g -Dmoespark.bench.shapes=$S \
      -Dmoespark.bench.variants=4 -Dmoespark.bench.fp8.variants=5 -cp "$CPK" org.moespark.bench.LayerBench --backend gpu \
      > $OUT/ncu-$S.csv 2>&1
    echo "ncu $S rc=$?"
  done
fi
