#!/usr/bin/env python3
"""The Spark GPU end-to-end benchmark's Python side (tools/bench/spark_gpu_e2e.sh runs it).

Subcommands (all print `key value` lines that the shell script collects, plus human-readable notes):

  gen-model FAMILY DIR          random bf16 checkpoint in Hugging Face layout, the same tensor names,
                                shapes and N(0, std^2) scales as `moe gen model` (jobs GenModel), made
                                on the GPU (seconds instead of minutes for Mixtral's 2.8 GB):
                                olmoe   H 2048, 64 experts, top-8, expert dim 1024, softmax top-k, no renorm
                                mixtral H 4096,  8 experts, top-2, expert dim 14336, top-k renormalised
  gen-data DIR ROWS H FILES [--binary]
                                `id bigint, embedding array<float>` Parquet (uncompressed, no dictionary:
                                random floats do not compress), ROWS split over FILES files, rows N(0, 1)
                                from torch's generator with a fixed seed; row r has id r. --binary: the
                                embedding as little-endian float32 `binary` (4·H bytes a row): the same
                                bytes, but one value per row for the Parquet readers instead of H list
                                elements with repetition/definition levels.
  pipeline MODEL DATA [--batch B] [--write OUT] [--limit N]
                                what a PyTorch user does without Spark: pyarrow reads the Parquet in
                                batches (threads), the fp32 rows are copied into pinned memory, copied to
                                the GPU on a copy stream (double-buffered, overlapping compute), the layer
                                runs with torch._grouped_mm (router GEMM, softmax top-k, sort, gather,
                                SwiGLU expert FFN, weighted combine in fp32), y comes back to pinned
                                memory; with --write the output Parquet (id, output, topk_ids,
                                topk_weights) is written by 4 writer threads, as the Spark job does.
  h2d H [--batch B] [--reps R]  the pinned host-to-device copy rate of the pipeline's input bytes
                                (fp32 [B, H] chunks, and one 2 GiB copy): the H2D ceiling in tokens/s.
  compare A B H                 GPU vs CPU `score` outputs (Parquet dirs) on the rows they share:
                                rows routed alike, relative error ||a-b||/||b|| over those rows, against
                                the bf16 tolerance 2e-2 (org.moespark.testing.Tolerance.BF16).
"""
import json
import os
import queue
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

FAMILIES = {
    # name: (hidden, experts, top_k, inter, renormalise)
    "olmoe": (2048, 64, 8, 1024, False),
    "mixtral": (4096, 8, 2, 14336, True),
}


def gen_model(family, out):
    from safetensors.torch import save_file
    h, e, k, i, _ = FAMILIES[family]
    os.makedirs(out, exist_ok=True)
    g = torch.Generator(device="cuda").manual_seed(1234)
    p = "model.layers.0."
    t = {}

    def randn(shape, std):
        return (torch.randn(*shape, generator=g, device="cuda") * std).to(torch.bfloat16).cpu()

    if family == "mixtral":
        cfg = {"architectures": ["MixtralForCausalLM"], "dtype": "bfloat16", "hidden_act": "silu", "hidden_size": h,
               "intermediate_size": i, "model_type": "mixtral", "num_experts_per_tok": k, "num_hidden_layers": 1,
               "num_local_experts": e}
        t[p + "block_sparse_moe.gate.weight"] = randn((e, h), 2 / h ** 0.5)
        for x in range(e):
            q = p + f"block_sparse_moe.experts.{x}."
            t[q + "w1.weight"] = randn((i, h), 1 / h ** 0.5)
            t[q + "w2.weight"] = randn((h, i), 1 / i ** 0.5)
            t[q + "w3.weight"] = randn((i, h), 1 / h ** 0.5)
    else:
        cfg = {"architectures": ["OlmoeForCausalLM"], "dtype": "bfloat16", "hidden_act": "silu", "hidden_size": h,
               "intermediate_size": i, "model_type": "olmoe", "norm_topk_prob": False, "num_experts": e,
               "num_experts_per_tok": k, "num_hidden_layers": 1}
        t[p + "mlp.gate.weight"] = randn((e, h), 2 / h ** 0.5)
        for x in range(e):
            q = p + f"mlp.experts.{x}."
            t[q + "gate_proj.weight"] = randn((i, h), 1 / h ** 0.5)
            t[q + "up_proj.weight"] = randn((i, h), 1 / h ** 0.5)
            t[q + "down_proj.weight"] = randn((h, i), 1 / i ** 0.5)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_file(t, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    print(f"gen-model {family}: H={h} E={e} k={k} I={i} -> {out}", flush=True)


def gen_data(out, rows, h, files, binary=False):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator(device="cuda").manual_seed(42)
    per = (rows + files - 1) // files
    t0 = time.time()
    pending = []
    lock = threading.Semaphore(4)

    def write(path, table):
        try:
            pq.write_table(table, path, compression="none", use_dictionary=False, row_group_size=16384,
                           data_page_size=1 << 20)
        finally:
            lock.release()

    for f in range(files):
        lo, hi = f * per, min(rows, (f + 1) * per)
        if lo >= hi:
            break
        x = torch.randn(hi - lo, h, generator=g, device="cuda").cpu().numpy().reshape(-1)
        if binary:
            offs = pa.py_buffer(np.arange(0, (hi - lo + 1) * 4 * h, 4 * h, dtype=np.int32))
            emb = pa.Array.from_buffers(pa.binary(), hi - lo, [None, offs, pa.py_buffer(x)])
        else:
            offs = pa.array(np.arange(0, (hi - lo + 1) * h, h, dtype=np.int32))
            emb = pa.ListArray.from_arrays(offs, pa.array(x, type=pa.float32()))
        table = pa.table({"id": pa.array(np.arange(lo, hi, dtype=np.int64)), "embedding": emb})
        lock.acquire()
        th = threading.Thread(target=write, args=(os.path.join(out, f"part-{f:05d}.parquet"), table))
        th.start()
        pending.append(th)
    for th in pending:
        th.join()
    size = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f"gen-data: {rows} rows x {h} fp32 ({'binary' if binary else 'array<float>'}) in {files} files, {size / 1e9:.2f} GB, {time.time() - t0:.1f} s -> {out}",
          flush=True)


class Layer:
    """The MoE block with torch._grouped_mm, from the checkpoint written by gen-model (or `moe gen model`)."""

    def __init__(self, model_dir):
        from safetensors.torch import load_file
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        w = load_file(os.path.join(model_dir, "model.safetensors"), device="cuda")
        self.H = cfg["hidden_size"]
        self.I = cfg["intermediate_size"]
        if cfg["model_type"] == "mixtral":
            self.E, self.k, self.renorm = cfg["num_local_experts"], cfg["num_experts_per_tok"], True
            p = "model.layers.0.block_sparse_moe."
            names = ("w1", "w3", "w2")
            ex = lambda x, n: w[f"{p}experts.{x}.{n}.weight"]
        else:
            self.E, self.k = cfg["num_experts"], cfg["num_experts_per_tok"]
            self.renorm = bool(cfg.get("norm_topk_prob", False))
            p = "model.layers.0.mlp."
            names = ("gate_proj", "up_proj", "down_proj")
            ex = lambda x, n: w[f"{p}experts.{x}.{n}.weight"]
        self.wr = w[p + "gate.weight"]  # [E, H] bf16
        # [E, 2I, H] (gate rows then up rows) and [E, H, I]; _grouped_mm takes the transposed views
        self.w_gu = torch.stack([torch.cat([ex(x, names[0]), ex(x, names[1])], 0) for x in range(self.E)])
        self.w_d = torch.stack([ex(x, names[2]) for x in range(self.E)])
        del w

    def __call__(self, x32):
        """x fp32 [T, H] on the GPU -> y fp32 [T, H], ids int32 [T, k], weights fp32 [T, k]."""
        T, H, I, k = x32.shape[0], self.H, self.I, self.k
        x = x32.to(torch.bfloat16)
        p = torch.softmax((x @ self.wr.t()).float(), dim=-1)
        w, ids = p.topk(k, dim=-1)
        if self.renorm:
            w = w / w.sum(-1, keepdim=True)
        flat = ids.reshape(-1)
        order = torch.sort(flat, stable=True).indices
        offs = torch.cumsum(torch.bincount(flat, minlength=self.E), 0).to(torch.int32)
        rows = x.index_select(0, order // k)
        gu = torch._grouped_mm(rows, self.w_gu.transpose(-2, -1), offs=offs)
        o = torch._grouped_mm(F.silu(gu[:, :I]) * gu[:, I:], self.w_d.transpose(-2, -1), offs=offs)
        inv = torch.empty_like(order)
        inv[order] = torch.arange(order.numel(), device=x.device)
        y = (o[inv].view(T, k, H).float() * w.unsqueeze(-1)).sum(1)
        return y, ids.to(torch.int32), w


def batches(data, batch, columns):
    dset = ds.dataset(data, format="parquet")
    for rb in dset.to_batches(columns=columns, batch_size=batch, use_threads=True, batch_readahead=4,
                              fragment_readahead=4):
        yield rb


def flat_rows(col, h, dtype=np.float32):
    """A list<float> (or list<int>, or float32 binary) column of equal-length non-null rows as a zero-copy
    numpy [n, h] view."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        raise ValueError("null embeddings in the input")
    n = len(col)
    if pa.types.is_binary(col.type):
        offs = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n + 1]
        if offs[-1] - offs[0] != n * 4 * h:
            raise ValueError(f"binary embeddings are not all 4*{h} bytes")
        return np.frombuffer(col.buffers()[2], dtype=np.float32, count=n * h, offset=int(offs[0])).reshape(n, h)
    offs = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n + 1]
    if offs[-1] - offs[0] != n * h:
        raise ValueError(f"embeddings are not all of length {h}")
    vals = np.frombuffer(col.values.buffers()[1], dtype=dtype)  # values of the whole child
    return vals[col.values.offset + offs[0]: col.values.offset + offs[0] + n * h].reshape(n, h)


def pipeline(model_dir, data, batch=16384, write=None, limit=None):
    torch.backends.cuda.matmul.allow_tf32 = False
    layer = Layer(model_dir)
    h, k = layer.H, layer.k
    dev = torch.device("cuda")
    copy = torch.cuda.Stream()
    comp = torch.cuda.current_stream()
    xin = [torch.empty(batch, h, dtype=torch.float32).pin_memory() for _ in range(2)]
    yout = [torch.empty(batch, h, dtype=torch.float32).pin_memory() for _ in range(2)]
    xd = [torch.empty(batch, h, dtype=torch.float32, device=dev) for _ in range(2)]
    up_done = [torch.cuda.Event() for _ in range(2)]
    down_done = [torch.cuda.Event() for _ in range(2)]
    # warm-up (cuBLAS handles, grouped_mm kernels) on random rows, outside the timed region
    for _ in range(2):
        layer(torch.randn(batch, h, device=dev))
    torch.cuda.synchronize()

    q = queue.Queue(maxsize=8)
    writers = []
    if write:
        os.makedirs(write, exist_ok=True)

        def writer(wid):
            wr = None
            while True:
                item = q.get()
                if item is None:
                    break
                ids_col, y, ti, tw = item
                n = len(ids_col)
                t = pa.table({
                    "id": ids_col,
                    "output": pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * h, h, dtype=np.int32)),
                                                       pa.array(y.reshape(-1))),
                    "topk_ids": pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32)),
                                                         pa.array(ti.reshape(-1))),
                    "topk_weights": pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32)),
                                                             pa.array(tw.reshape(-1)))})
                if wr is None:
                    wr = pq.ParquetWriter(os.path.join(write, f"part-{wid:05d}.parquet"), t.schema, compression="snappy")
                wr.write_table(t)
            if wr is not None:
                wr.close()

        writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
        for w in writers:
            w.start()

    tokens = 0
    t_read = t_pack = 0.0
    t0 = time.time()
    pend = [None, None]  # (ids column, n, ids, weights) of the slot whose y is on its way back
    it = batches(data, batch, ["id", "embedding"])
    slot = 0

    def finish(s):
        ids_col, n, ti, tw = pend[s]
        down_done[s].synchronize()
        if write:
            q.put((ids_col, yout[s][:n].numpy().copy(), ti.cpu().numpy(), tw.cpu().numpy()))
        pend[s] = None

    while True:
        r0 = time.time()
        rb = next(it, None)
        t_read += time.time() - r0
        if rb is None:
            break
        n = rb.num_rows
        if limit is not None and tokens + n > limit:
            rb = rb.slice(0, limit - tokens)
            n = rb.num_rows
        if pend[slot] is not None:
            finish(slot)
        p0 = time.time()
        x_np = flat_rows(rb.column(1), h)
        xin[slot][:n].numpy()[:] = x_np  # the one host copy: Arrow buffer -> pinned
        t_pack += time.time() - p0
        with torch.cuda.stream(copy):  # the slot's last compute is done: finish() waited for its y
            xd[slot][:n].copy_(xin[slot][:n], non_blocking=True)
            up_done[slot].record(copy)
        comp.wait_event(up_done[slot])
        y, ti, tw = layer(xd[slot][:n])
        yout[slot][:n].copy_(y, non_blocking=True)
        down_done[slot].record(comp)
        pend[slot] = (rb.column(0), n, ti, tw)
        tokens += n
        slot = 1 - slot
        if limit is not None and tokens >= limit:
            break
    for s in (slot, 1 - slot):
        if pend[s] is not None:
            finish(s)
    torch.cuda.synchronize()
    for _ in writers:
        q.put(None)
    for w in writers:
        w.join()
    s = time.time() - t0
    print(f"pipeline: {tokens} tokens in {s:.2f} s (read {t_read:.2f} s, pack {t_pack:.2f} s on the main thread), "
          f"write={'yes' if write else 'no'}", flush=True)
    print(f"torch_pipeline{'_write' if write else ''}.tokens_per_s {tokens / s:.1f}", flush=True)


def h2d(h, batch=16384, reps=40):
    dev = torch.device("cuda")
    src = torch.randn(batch, h).pin_memory()
    dst = torch.empty(batch, h, device=dev)
    dst.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(reps):
        dst.copy_(src, non_blocking=True)
    e.record()
    torch.cuda.synchronize()
    chunk_gbs = reps * src.numel() * 4 / (s.elapsed_time(e) * 1e6)
    big = torch.empty(1 << 29, dtype=torch.float32).pin_memory()  # 2 GiB
    bd = torch.empty_like(big, device=dev)
    bd.copy_(big, non_blocking=True)
    torch.cuda.synchronize()
    s.record()
    for _ in range(3):
        bd.copy_(big, non_blocking=True)
    e.record()
    torch.cuda.synchronize()
    big_gbs = 3 * big.numel() * 4 / (s.elapsed_time(e) * 1e6)
    best = max(chunk_gbs, big_gbs)
    print(f"h2d: pinned fp32 [{batch}, {h}] chunks {chunk_gbs:.1f} GB/s, one 2 GiB copy {big_gbs:.1f} GB/s; "
          f"input bytes per token {4 * h}", flush=True)
    print(f"h2d.gbs {best:.2f}", flush=True)
    print(f"h2d.tokens_per_s {best * 1e9 / (4 * h):.1f}", flush=True)


def compare(a, b, h):
    def load(p):
        t = ds.dataset(p, format="parquet").to_table()
        ids = t.column("id").to_numpy()
        o = np.argsort(ids)
        y = flat_rows(t.column("output"), h)[o]
        kk = len(t.column("topk_ids")[0])
        ti = flat_rows(t.column("topk_ids"), kk, np.int32)[o]
        return ids[o], y, ti

    ia, ya, ta = load(a)
    ib, yb, tb = load(b)
    common, xa, xb = np.intersect1d(ia, ib, return_indices=True)
    same = np.all(np.sort(ta[xa], 1) == np.sort(tb[xb], 1), axis=1)
    ya, yb = ya[xa][same].astype(np.float64), yb[xb][same].astype(np.float64)
    err = np.sqrt(((ya - yb) ** 2).sum() / (yb ** 2).sum())
    row_err = np.sqrt(((ya - yb) ** 2).sum(1) / (yb ** 2).sum(1))
    nan = int(np.isnan(ya).sum() + np.isnan(yb).sum())
    ok = bool(err <= 2e-2 and nan == 0 and same.mean() >= 0.9)
    print(f"compare: {len(common)} rows in both; {int(same.sum())} ({100 * same.mean():.2f}%) routed to the same "
          f"experts; on those ||gpu-cpu||/||cpu|| = {err:.3e} (row max {row_err.max():.3e}, median "
          f"{np.median(row_err):.3e}), NaN {nan}; bf16 tolerance 2e-2: {'PASS' if ok else 'FAIL'}", flush=True)
    print(f"compare.rows {len(common)}", flush=True)
    print(f"compare.same_routing {same.mean():.4f}", flush=True)
    print(f"compare.rel_err {err:.3e}", flush=True)
    print(f"compare.pass {int(ok)}", flush=True)


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, a = argv[0], argv[1:]

    def opt(name, default, conv=int):
        if name in a:
            i = a.index(name)
            v = conv(a[i + 1])
            del a[i:i + 2]
            return v
        return default

    if cmd == "gen-model":
        gen_model(a[0], a[1])
    elif cmd == "gen-data":
        binary = "--binary" in a
        a = [x for x in a if x != "--binary"]
        gen_data(a[0], int(a[1]), int(a[2]), int(a[3]), binary)
    elif cmd == "pipeline":
        b = opt("--batch", 16384)
        wr = opt("--write", None, str)
        lim = opt("--limit", None)
        pipeline(a[0], a[1], b, wr, lim)
    elif cmd == "h2d":
        b = opt("--batch", 16384)
        r = opt("--reps", 40)
        h2d(int(a[0]), b, r)
    elif cmd == "compare":
        compare(a[0], a[1], int(a[2]))
    else:
        print(f"unknown command {cmd}\n{__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
