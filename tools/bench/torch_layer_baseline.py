#!/usr/bin/env python3
"""PyTorch baselines for `org.moespark.bench.LayerBench --backend gpu` (run in the same device call).

Usage: torch_layer_baseline.py [TOKENS] [--no-eager]

For each shape (same list as LayerBench.GPU_SHAPES) prints lines `<shape>.<metric> <value>`:
  ffn_us       the bf16 SwiGLU expert FFN with torch._grouped_mm: gate/up GEMM [R,H]x[E,H,2I],
               silu(g)*u, down GEMM [R,I]x[E,I,H] on expert-major permuted rows (R = T*k)
  pipeline_us  the whole layer as a torch _grouped_mm pipeline: router GEMM, softmax top-k,
               stable sort, index_select gather, the FFN above, weighted unpermute in fp32
  eager_us     transformers' eager expert loop (Mixtral/Qwen style: per expert, rows via where,
               gate/up/down nn.Linear, index_add_ of weighted rows)
Routing: uniform random logits (balanced in expectation), like LayerBench. FLOPs of the FFN:
6*T*k*H*I. Times are CUDA-event means after warm-up (performance-anchors.md methodology).
"""
import sys

import torch
import torch.nn.functional as F

SHAPES = [("mixtral", 4096, 14336, 8, 2), ("qwen3-30b-a3b", 2048, 768, 128, 8), ("olmoe", 2048, 1024, 64, 8),
          ("deepseek-v3", 7168, 2048, 256, 8)]


def timed(f, n=10, warm=2):
    for _ in range(warm):
        f()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        f()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / n * 1000.0


def main():
    T = int(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else 16384
    eager = "--no-eager" not in sys.argv
    d, B = "cuda", torch.bfloat16
    torch.manual_seed(0)
    for name, H, I, E, k in SHAPES:
        x = torch.randn(T, H, device=d, dtype=B)
        wr = torch.randn(E, H, device=d, dtype=B) / H ** 0.5
        # nn.Linear layout [out, in]; _grouped_mm wants mat_b [E, K, N]: the transposed view
        w_gu = torch.randn(E, 2 * I, H, device=d, dtype=B) / H ** 0.5
        w_d = torch.randn(E, H, I, device=d, dtype=B) / I ** 0.5

        def route(xx):
            logits = xx @ wr.t()
            p = torch.softmax(logits.float(), dim=-1)
            w, ids = p.topk(k, dim=-1)
            return w / w.sum(-1, keepdim=True), ids

        w, ids = route(x)
        flat = ids.reshape(-1)
        order = torch.sort(flat, stable=True).indices
        counts = torch.bincount(flat, minlength=E)
        offs = torch.cumsum(counts, 0).to(torch.int32)
        xp = x.index_select(0, order // k)

        def ffn(rows):
            gu = torch._grouped_mm(rows, w_gu.transpose(-2, -1), offs=offs)
            g, u = gu[:, :I], gu[:, I:]
            return torch._grouped_mm(F.silu(g) * u, w_d.transpose(-2, -1), offs=offs)

        ffn_us = timed(lambda: ffn(xp))
        print(f"{name}.ffn_us {ffn_us:.2f}", flush=True)

        def pipeline():
            ww, ii = route(x)
            fl = ii.reshape(-1)
            od = torch.sort(fl, stable=True).indices
            of = torch.cumsum(torch.bincount(fl, minlength=E), 0).to(torch.int32)
            rows = x.index_select(0, od // k)
            gu = torch._grouped_mm(rows, w_gu.transpose(-2, -1), offs=of)
            o = torch._grouped_mm(F.silu(gu[:, :I]) * gu[:, I:], w_d.transpose(-2, -1), offs=of)
            inv = torch.empty_like(od)
            inv[od] = torch.arange(od.numel(), device=d)
            return (o[inv].view(T, k, H).float() * ww.unsqueeze(-1)).sum(1).to(B)

        print(f"{name}.pipeline_us {timed(pipeline, n=5):.2f}", flush=True)

        if eager:
            def eager_loop():
                ww, ii = route(x)
                y = torch.zeros_like(x)
                mask = F.one_hot(ii, num_classes=E).permute(2, 1, 0)
                hit = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
                for e in hit:
                    e = int(e)
                    slot, tok = torch.where(mask[e])
                    cur = x[tok]
                    gu = F.linear(cur, w_gu[e])
                    h = F.silu(gu[:, :I]) * gu[:, I:]
                    out = F.linear(h, w_d[e]) * ww[tok, slot, None].to(B)
                    y.index_add_(0, tok, out)
                return y

            print(f"{name}.eager_us {timed(eager_loop, n=2, warm=1):.2f}", flush=True)
        del x, w_gu, w_d, xp
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
