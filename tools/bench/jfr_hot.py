#!/usr/bin/env python3
"""Summarise a Java Flight Recorder file without a GUI: where the CPU samples fall.

    python3 tools/bench/jfr_hot.py RECORDING.jfr [TOP=30] [THREAD_FILTER=Executor task launch]

Runs `jfr print --events jdk.ExecutionSample` (the `jfr` tool of the JRE on PATH) and prints, for the
threads whose name contains THREAD_FILTER: the sample count, the top frames (self time), the first
org.moespark frame on each stack (inclusive time by our method), and a coarse bucket of each stack
(Parquet reader / our operator / Spark codegen / GC-free JDK copies ...). Also totals the GC pauses
(jdk.GCPhasePause) of the recording.
"""
import collections
import re
import subprocess
import sys


def samples(path):
    p = subprocess.Popen(["jfr", "print", "--events", "jdk.ExecutionSample", path], stdout=subprocess.PIPE, text=True)
    thread, frames, in_stack = None, [], False
    for line in p.stdout:
        s = line.strip()
        if s.startswith("jdk.ExecutionSample"):
            if thread is not None:
                yield thread, frames
            thread, frames, in_stack = "", [], False
        elif s.startswith("sampledThread ="):
            m = re.match(r'sampledThread = "(.*)" \(', s)
            thread = m.group(1) if m else s
        elif s.startswith("stackTrace = ["):
            in_stack = True
        elif in_stack:
            if s.startswith("]"):
                in_stack = False
            elif s and s != "...":
                frames.append(re.sub(r"\s+line:.*$", "", s))
    if thread is not None:
        yield thread, frames
    p.wait()


BUCKETS = [
    ("parquet reader: nested levels", ("ParquetColumnVector", "VectorizedRleValuesReader", "ParquetVectorUpdater",
                                        "VectorizedColumnReader", "VectorizedPlainValuesReader")),
    ("parquet reader: pages/io", ("org.apache.parquet", "org.apache.hadoop", "sun.nio", "java.io.")),
    ("moespark: pack", ("EmbeddingPacker",)),
    ("moespark: unpack", ("ResultUnpacker",)),
    ("moespark: staging/GPU", ("PinnedStaging", "MoeLayerGpu", "org.moespark.cuda")),
    ("moespark: other", ("org.moespark",)),
    ("vector reserve/alloc", ("WritableColumnVector.reserve", "OnHeapColumnVector.reserveInternal",
                              "OffHeapColumnVector.reserveInternal")),
    ("spark codegen (row conversion, sink)", ("GeneratedClass", "UnsafeRowWriter", "UnsafeArrayData")),
]


def bucket(frames):
    for name, keys in BUCKETS:
        for f in frames[:12]:
            if any(k in f for k in keys):
                return name
    return "other: " + (frames[0].split("(")[0] if frames else "?")


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    filt = sys.argv[3] if len(sys.argv) > 3 else "Executor task launch"
    self_c, ours, buckets, threads = collections.Counter(), collections.Counter(), collections.Counter(), collections.Counter()
    n = 0
    for t, fr in samples(path):
        threads[re.sub(r"\d+", "#", t)] += 1
        if filt not in t or not fr:
            continue
        n += 1
        self_c[fr[0].split("(")[0]] += 1
        o = next((f for f in fr if f.startswith("org.moespark")), None)
        if o:
            ours[o.split("(")[0]] += 1
        buckets[bucket(fr)] += 1
    print(f"jfr {path}: {sum(threads.values())} CPU samples, {n} on threads matching '{filt}'")
    print("threads:", ", ".join(f"{k} {v}" for k, v in threads.most_common(8)))
    print("buckets (stack contains, first match):")
    for k, v in buckets.most_common(top):
        print(f"  {100 * v / max(n, 1):5.1f}%  {k}")
    print("top frames (self):")
    for k, v in self_c.most_common(top):
        print(f"  {100 * v / max(n, 1):5.1f}%  {k}")
    print("moespark methods on the stack (inclusive, first org.moespark frame):")
    for k, v in ours.most_common(15):
        print(f"  {100 * v / max(n, 1):5.1f}%  {k}")
    p = subprocess.run(["jfr", "print", "--events", "jdk.GCPhasePause", path], capture_output=True, text=True)
    ms = [float(x) for x in re.findall(r"duration = ([\d.]+) ms", p.stdout)]
    s = [float(x) / 1000 for x in re.findall(r"duration = ([\d.]+) s\b", p.stdout)]
    print(f"GC pauses: {len(ms) + len(s)}, total {sum(ms) / 1000 + sum(s):.2f} s, longest {max(ms + [x * 1000 for x in s] + [0]):.1f} ms")


if __name__ == "__main__":
    main()
