#!/usr/bin/env bash
# Spark on the GPU, end to end (issue 9), for one model in one run on the GPU machine:
#
#   tools/bench/spark_gpu_e2e.sh olmoe|mixtral [ROWS=2097152] [SAMPLE=4096]
#
# Needs: java (Spark 4.2 + moespark on $CP), python3 with torch/pyarrow/safetensors, nvidia-smi.
# Env:   CP      class path of moespark + Spark (default: the staged .dev-sg layout, see benchmarks/spark-gpu.md)
#        FLAGS   the JVM flags Spark needs on Java 17+ (pom.xml's moespark.jvmFlags)
#        PY      this directory's torch_parquet_pipeline.py;  W  work dir (default /tmp/e2e);  OUT  results dir
#        TYPE    array|binary: the embedding column, array<float> (default) or little-endian float32 binary
#        SKIP    space-separated steps to leave out: staging h2d sample torchwrite
#        OUTPUT  parquet|noop|both: what the full-size GPU score job writes (default both when the disk
#                holds input + output, else noop: 2M Mixtral rows are 34 GB of fp32 in and as much out)
#        BATCHES space-separated rows per batch to sweep (default 1024): each sets both the Parquet
#                reader's batch and the GPU call's rows (--batch-rows); the scan, the staging bench and the
#                noop score job run once per value, the best noop score job goes into the table
#        STAGING_BATCHES  tokens per chunk for StagingBench (default BATCHES; its largest value is the
#                "GPU layer benchmark" rate of the table)
#        REPEAT  the noop score job runs this many times in one session (default 1): the first is cold (JIT,
#                model load), the last warm (a long-lived executor); both go into the table
#        PROFILE a directory: the noop score jobs run with Java Flight Recorder (settings=profile) and a GC
#                log there (score-B.jfr, gc-B.log; B = the batch rows)
#
# Steps (all timings from this one run, so every ratio compares numbers of the same machine and session):
#  1. random bf16 checkpoint (torch_parquet_pipeline.py gen-model; same layout as `moe gen model`) and a
#     ROWS-token `id bigint, embedding array<float>` Parquet (uncompressed) + a SAMPLE-row head of it
#  2. StagingBench: forwardDevice alone on device-resident x (the "GPU layer benchmark" tokens/s on
#     this checkpoint), through PinnedStaging from pinned memory, and the pinned H2D rate
#  3. h2d: torch's pinned H2D copy rate of the input bytes (fp32 [16384, H]) -> the H2D ceiling
#  4. ParquetScanBench: Spark reading the input alone (noop sink) -> the reader's ceiling
#  5. `moe score --backend gpu` on all ROWS rows, local[16] (noop and/or Parquet output), with --explain
#  6. `moe score` on the SAMPLE rows: --backend gpu and --backend cpu (all 16 cores) -> compare (bf16)
#  7. torch_parquet_pipeline.py pipeline: pyarrow + torch._grouped_mm, without and with writing
#  8. the table of tokens/s and ratios
set -uo pipefail
fam=${1:?olmoe|mixtral}
rows=${2:-2097152}
sample=${3:-4096}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PY:-$here/torch_parquet_pipeline.py}
W=${W:-/tmp/e2e}
OUT=${OUT:-$W/results}
CP=${CP:?class path}
FLAGS=${FLAGS:-}
LOG4J=${LOG4J:-}
mkdir -p "$W" "$OUT"
R=$OUT/$fam.kv
: > "$R"
kv() { echo "$1 $2" >> "$R"; }
case $fam in
  olmoe) H=2048 ;;
  mixtral) H=4096 ;;
  *) echo "unknown family $fam" >&2; exit 2 ;;
esac
java_run() { java -Xmx48g -Xss4m $FLAGS ${JOPTS:-} ${LOG4J:+-Dlog4j2.configurationFile=$LOG4J} \
  -Dspark.sql.parquet.enableNestedColumnVectorizedReader=true -Dspark.ui.enabled=false \
  -Dspark.driver.maxResultSize=4g -cp "$CP" "$@"; }
moe() { java_run org.moespark.jobs.Main "$@"; }
t() { local s=$(date +%s%N); "$@"; local rc=$?; echo "  [$(( ($(date +%s%N) - s) / 1000000 )) ms, rc $rc]"; return $rc; }

echo "== spark_gpu_e2e $fam: rows $rows, sample $sample, $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
nproc; free -g | head -2; df -h "$W" | tail -1

model=$W/model-$fam; data=$W/data-$fam; head_=$W/sample-$fam
rm -rf "$model" "$data" "$head_" "$W"/out-* "$W"/torch-out-*
t python3 "$PY" gen-model "$fam" "$model" || exit 1
TYPE=${TYPE:-array}
SKIP=${SKIP:-}
skip() { case " $SKIP " in *" $1 "*) return 0 ;; esac; return 1; }
bin=$([ "$TYPE" = binary ] && echo --binary)
t python3 "$PY" gen-data "$data" "$rows" "$H" 32 $bin || exit 1
skip sample || t python3 "$PY" gen-data "$head_" "$sample" "$H" 16 $bin || exit 1   # its own rows, same distribution
kv input_type "$TYPE"
in_gb=$(du -sb "$data" | awk '{print $1/1e9}')
free_gb=$(df -B1 --output=avail "$W" | tail -1 | awk '{print $1/1e9}')
mode=${OUTPUT:-$(awk -v i="$in_gb" -v f="$free_gb" 'BEGIN{print (f > 1.3 * i + 5) ? "both" : "noop"}')}
echo "input $in_gb GB, free $free_gb GB -> full-size GPU output: $mode"
kv input_gb "$in_gb"

BATCHES=${BATCHES:-1024}
if ! skip staging; then
  for b in ${STAGING_BATCHES:-$BATCHES}; do
    echo "== StagingBench (layer alone, PinnedStaging, pinned H2D), $b tokens per chunk"
    java_run org.moespark.bench.StagingBench "$model" "$b" $(( 16 * 16384 / b )) 4 2>&1 | grep -v WARN | tee "$OUT/$fam-staging-$b.txt"
    kv "layer_tokens_per_s_$b" "$(sed -n 's/^layer forwardDevice.* \([0-9,]*\) tok\/s$/\1/p' "$OUT/$fam-staging-$b.txt" | tr -d ,)"
  done
  # the GPU layer benchmark's own rate: the largest chunk of the sweep
  kv layer_tokens_per_s "$(awk '$1 ~ /^layer_tokens_per_s_/ {split($1, p, "_"); b = p[5] + 0; if (b > best) {best = b; v = $2}} END {print v}' "$R")"
fi
if ! skip h2d; then
  echo "== H2D ceiling (torch, pinned)"
  python3 "$PY" h2d "$H" | tee "$OUT/$fam-h2d.txt"
  kv h2d_tokens_per_s "$(awk '$1=="h2d.tokens_per_s"{print $2}' "$OUT/$fam-h2d.txt")"
  kv h2d_gbs "$(awk '$1=="h2d.gbs"{print $2}' "$OUT/$fam-h2d.txt")"
fi

for b in $BATCHES; do
  echo "== Spark Parquet scan alone (noop sink), local[16], reader batch $b"
  JOPTS="-Dspark.sql.parquet.columnarReaderBatchSize=$b" java_run org.moespark.jobs.ParquetScanBench "$data" 'local[16]' \
    ${SCAN_REPS:-2} 2>&1 | grep -v WARN | tee "$OUT/$fam-scan-$b.txt"
  kv "scan_tokens_per_s_$b" "$(awk '$1=="scan.tokens_per_s"{print $2}' "$OUT/$fam-scan-$b.txt")"
done
kv scan_tokens_per_s "$(awk '$1 ~ /^scan_tokens_per_s_/ && $2 > m {m = $2} END {print m}' "$R")"

score_rate() { sed -n 's/^score: .* s, \([0-9,]*\) rows\/s = tokens\/s.*/\1/p' "$1" | tr -d , | tail -1; }
# the first job of a --repeat series (cold JVM: JIT, model load), and the last (warm executor)
score_rate_first() { sed -n 's/^score: .* s, \([0-9,]*\) rows\/s = tokens\/s.*/\1/p' "$1" | tr -d , | head -1; }
# tokens/s with the one-off model load (read + upload, once per executor JVM) taken out of the wall time
score_rate_warm() {
  awk '/^score: [0-9.]+ s, /{s=$2; exit} /^score: .*rows in, /{gsub(",","",$5); n=$5} $2=="modelLoadTime"{l=$3/1000}
       END{if (s > l && n > 0) printf "%.1f", n / (s - l)}' "$1"; }
if [ "$mode" = noop ] || [ "$mode" = both ]; then
  for b in $BATCHES; do
    echo "== moe score --backend gpu, $rows rows, noop output, $b rows per batch"
    prof=
    if [ -n "${PROFILE:-}" ]; then
      mkdir -p "$PROFILE"
      prof="-XX:StartFlightRecording=filename=$PROFILE/score-$b.jfr,settings=profile -Xlog:gc*:file=$PROFILE/gc-$b.log"
    fi
    JOPTS="$prof" moe score --model "$model" --layer 0 --input "$data" --output "$W/out-noop" --backend gpu \
      --batch-rows "$b" --format noop --explain --master 'local[16]' --progress-seconds 0 --repeat "${REPEAT:-1}" 2>&1 \
      | grep -v WARN | tee "$OUT/$fam-score-gpu-noop-$b.txt"
    kv "spark_gpu_noop_tokens_per_s_$b" "$(score_rate_first "$OUT/$fam-score-gpu-noop-$b.txt")"
    [ "${REPEAT:-1}" -gt 1 ] && kv "spark_gpu_noop_warm_tokens_per_s_$b" "$(score_rate "$OUT/$fam-score-gpu-noop-$b.txt")"
    kv "spark_gpu_noop_excl_load_tokens_per_s_$b" "$(score_rate_warm "$OUT/$fam-score-gpu-noop-$b.txt")"
  done
  best_b=$(awk '$1 ~ /^spark_gpu_noop_tokens_per_s_/ && $2 > m {m = $2; split($1, p, "_"); b = p[7]} END {print b}' "$R")
  kv spark_gpu_noop_batch "$best_b"
  kv spark_gpu_noop_tokens_per_s "$(awk -v k="spark_gpu_noop_tokens_per_s_$best_b" '$1==k{print $2}' "$R")"
  kv spark_gpu_noop_excl_load_tokens_per_s "$(awk -v k="spark_gpu_noop_excl_load_tokens_per_s_$best_b" '$1==k{print $2}' "$R")"
  kv spark_gpu_noop_warm_tokens_per_s "$(awk -v k="spark_gpu_noop_warm_tokens_per_s_$best_b" '$1==k{print $2}' "$R")"
fi
if [ "$mode" = parquet ] || [ "$mode" = both ]; then
  echo "== moe score --backend gpu, $rows rows, Parquet output"
  moe score --model "$model" --layer 0 --input "$data" --output "$W/out-gpu" --backend gpu --explain \
    ${best_b:+--batch-rows $best_b} \
    --master 'local[16]' --progress-seconds 0 2>&1 | grep -v WARN | tee "$OUT/$fam-score-gpu.txt"
  kv spark_gpu_parquet_tokens_per_s "$(score_rate "$OUT/$fam-score-gpu.txt")"
  kv spark_gpu_parquet_excl_load_tokens_per_s "$(score_rate_warm "$OUT/$fam-score-gpu.txt")"
  rm -rf "$W/out-gpu"
fi

if ! skip sample; then
echo "== sample: moe score --backend gpu and --backend cpu on $sample rows (local[16], 16 partitions)"
moe score --model "$model" --layer 0 --input "$head_" --output "$W/out-sample-gpu" --backend gpu \
  --master 'local[16]' --partitions 16 --progress-seconds 0 2>&1 | grep -v WARN | tail -2 | tee "$OUT/$fam-sample-gpu.txt"
moe score --model "$model" --layer 0 --input "$head_" --output "$W/out-sample-cpu" --backend cpu --explain \
  --master 'local[16]' --partitions 16 --progress-seconds 0 2>&1 | grep -v WARN | tee "$OUT/$fam-sample-cpu.txt"
kv spark_cpu_tokens_per_s "$(score_rate "$OUT/$fam-sample-cpu.txt")"
python3 "$PY" compare "$W/out-sample-gpu" "$W/out-sample-cpu" "$H" | tee "$OUT/$fam-compare.txt"
for k in same_routing rel_err pass; do kv "compare_$k" "$(awk -v k="compare.$k" '$1==k{print $2}' "$OUT/$fam-compare.txt")"; done
fi

echo "== PyTorch pipeline (pyarrow + torch._grouped_mm), no output written"
python3 "$PY" pipeline "$model" "$data" --batch 16384 | tee "$OUT/$fam-torch.txt"
kv torch_tokens_per_s "$(awk '$1=="torch_pipeline.tokens_per_s"{print $2}' "$OUT/$fam-torch.txt")"
if [ "$mode" = both ] && ! skip torchwrite; then
  echo "== PyTorch pipeline, writing the same output Parquet"
  python3 "$PY" pipeline "$model" "$data" --batch 16384 --write "$W/torch-out-$fam" | tee "$OUT/$fam-torch-write.txt"
  kv torch_write_tokens_per_s "$(awk '$1=="torch_pipeline_write.tokens_per_s"{print $2}' "$OUT/$fam-torch-write.txt")"
  rm -rf "$W/torch-out-$fam"
fi

echo "== results: $fam ($(cat "$OUT/gpu.txt"))"
echo "per batch size (rows per reader batch = rows per GPU call):"
awk '$1 ~ /_[0-9]+$/ {printf "  %-46s %14.0f\n", $1, $2}' "$R" | tee "$OUT/$fam-sweep.txt"
awk '
  { v[$1] = $2 }
  END {
    printf "%-46s %14s\n", "what", "tokens/s"
    n = split("spark_gpu_noop_tokens_per_s spark_gpu_noop_excl_load_tokens_per_s spark_gpu_noop_warm_tokens_per_s spark_gpu_parquet_tokens_per_s spark_gpu_parquet_excl_load_tokens_per_s spark_cpu_tokens_per_s torch_tokens_per_s torch_write_tokens_per_s layer_tokens_per_s h2d_tokens_per_s scan_tokens_per_s", ks, " ")
    for (i = 1; i <= n; i++) if (ks[i] in v && v[ks[i]] != "") printf "%-46s %14.0f\n", ks[i], v[ks[i]]
    if (v["spark_gpu_noop_tokens_per_s"] != "") {
      g = v["spark_gpu_noop_tokens_per_s"]
      printf "ratio spark_gpu(noop) / torch pipeline (no write)  %.3fx\n", g / v["torch_tokens_per_s"]
      printf "ratio spark_gpu(noop) / h2d ceiling                %.3fx\n", g / v["h2d_tokens_per_s"]
      printf "ratio spark_gpu(noop) / layer alone                %.3fx\n", g / v["layer_tokens_per_s"]
      printf "ratio spark_gpu(noop) / spark_cpu                  %.1fx\n", g / v["spark_cpu_tokens_per_s"]
      printf "ratio spark_gpu(noop) / spark parquet scan alone   %.3fx\n", g / v["scan_tokens_per_s"]
    }
    if (v["spark_gpu_noop_warm_tokens_per_s"] != "") {
      w = v["spark_gpu_noop_warm_tokens_per_s"]
      printf "ratio spark_gpu(noop, warm) / torch pipeline       %.3fx\n", w / v["torch_tokens_per_s"]
      printf "ratio spark_gpu(noop, warm) / h2d ceiling          %.3fx\n", w / v["h2d_tokens_per_s"]
      printf "ratio spark_gpu(noop, warm) / layer alone          %.3fx\n", w / v["layer_tokens_per_s"]
    }
    if (v["spark_gpu_parquet_tokens_per_s"] != "" && v["torch_write_tokens_per_s"] != "") {
      g = v["spark_gpu_parquet_tokens_per_s"]
      printf "ratio spark_gpu(parquet) / torch pipeline (write)  %.3fx\n", g / v["torch_write_tokens_per_s"]
      printf "ratio spark_gpu(parquet) / h2d ceiling             %.3fx\n", g / v["h2d_tokens_per_s"]
      printf "ratio spark_gpu(parquet) / layer alone             %.3fx\n", g / v["layer_tokens_per_s"]
    }
    printf "sample check (bf16 tolerance): pass=%s, same routing %s, rel err %s\n", v["compare_pass"], v["compare_same_routing"], v["compare_rel_err"]
  }' "$R" | tee "$OUT/$fam-table.txt"
