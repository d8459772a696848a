#!/usr/bin/env bash
# One device call of issue 9's Spark benchmark, as run on the H100 (benchmarks/spark-gpu.md). Expects, in the
# device's copy of the working tree: a JRE extracted at /tmp/jre (pack.sh's jlink image plus jdk.incubator.vector,
# jdk.jfr, jdk.management.jfr, jdk.jcmd), Spark's jars in /tmp/jars (sent in <= 50 MB chunks over earlier calls),
# the classes built with nvcc (gpu-kernels, spark-ops, jobs; test-classes for the tests) and the JUnit console
# launcher at .device/junit-console.jar. Runs the Spark-level GPU tests (unless NOTESTS), then
# tools/bench/spark_gpu_e2e.sh with a JFR profile per score job (PROF= to disable), summarises the profiles with
# tools/bench/jfr_hot.py and leaves results.tgz (+ xz'd JFRs) in $OUT.
#   FAM=olmoe|mixtral TYPE=array|binary BATCHES="1024" REPEAT=2 SKIP="torchwrite" SAMPLE=4096 E2E_TIMEOUT=420 \
#     bash tools/bench/device_spark_run.sh
export PATH=/tmp/jre/bin:$PATH
FAM=${FAM:-olmoe}
FLAGS="-XX:+IgnoreUnrecognizedVMOptions --add-modules=jdk.incubator.vector --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED -Dio.netty.tryReflectionSetAccessible=true -Dio.netty.allocator.type=pooled -Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE --sun-misc-unsafe-memory-access=allow --enable-native-access=ALL-UNNAMED"
JARS=$(ls /tmp/jars/*.jar | tr '\n' ':')
echo "jars: $(ls /tmp/jars | wc -l)"
CPT="gpu-kernels/target/classes:gpu-kernels/target/test-classes:spark-ops/target/classes:spark-ops/target/test-classes:jobs/target/classes:${JARS%:}"
export SPARK_LOCAL_IP=127.0.0.1
R=/tmp/res; rm -rf $R; mkdir -p $R/e2e $R/prof
[ "$FAM" = mixtral ] && rm -rf /tmp/e2e/data-olmoe /tmp/e2e/sample-olmoe
df -h /tmp | tail -1
if [ -z "${NOTESTS:-}" ]; then
timeout 150 java -Xmx8g $FLAGS -jar .device/junit-console.jar execute --class-path "$CPT" --select-class org.moespark.spark.MoeScoreGpuTest --select-class org.moespark.spark.MoeScoreStagedGpuTest --include-tag gpu --details=tree > $R/spark-gpu-tests.log 2>&1
echo "spark gpu tests rc=$?"; grep -E "✘|tests (successful|failed)" $R/spark-gpu-tests.log | head
fi
CP="$CPT" FLAGS="$FLAGS" OUT=$R/e2e W=/tmp/e2e SKIP="${SKIP-torchwrite}" OUTPUT=noop BATCHES="${BATCHES:-16384 4096 2048}" PROFILE="${PROF-$R/prof}" \
  timeout ${E2E_TIMEOUT:-420} bash tools/bench/spark_gpu_e2e.sh $FAM 2097152 ${SAMPLE:-4096} > $R/e2e.log 2>&1
echo "e2e rc=$?"; grep -A40 "== results" $R/e2e.log
for f in $R/prof/*.jfr; do [ -e "$f" ] && python3 tools/bench/jfr_hot.py "$f" 25 > "${f%.jfr}.hot.txt" 2>&1; done
cat $R/prof/*.hot.txt | head -150
ls -la $R/prof
tar -C $R --exclude='*.jfr' -czf $OUT/results.tgz .
for f in $R/prof/*.jfr; do [ -e "$f" ] && [ $(stat -c %s "$f") -lt 16000000 ] && xz -1 -c "$f" > $OUT/$(basename "$f").xz; done
ls -la $OUT
