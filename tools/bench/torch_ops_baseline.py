#!/usr/bin/env python3
"""PyTorch baselines for `OpsBench` (run in the same session on the GPU machine).

Prints lines `<shape>.<metric>_us <microseconds>`: the index_select gather half of a permute and the
eager unpermute `(y[inv].view(T,k,H).float() * w).sum(1).bf16()` for the same shapes, routing and
token count as org.moespark.bench.OpsBench (performance-anchors.md §3.2 methodology); the eager 1x128
FP8 quant (view, amax, divide, cast: DeepSeek act_quant's rule) and the eager equivalent of
fused_transpose_split_quant (128x1 amax, scale, cast, split, transpose) per shape; and the eager
routers at 65536 tokens (`routing.deepseek_us`, `routing.softmax256_us`, `routing.softmax128_us`).
"""
import sys

import torch

SHAPES = [("mixtral", 4096, 8, 2), ("qwen3-30b-a3b", 2048, 128, 8), ("olmoe", 2048, 64, 8), ("deepseek-v3", 7168, 256, 8)]


def timed(f, n=20):
    for _ in range(3):
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
    T = int(sys.argv[1]) if len(sys.argv) > 1 else 16384
    d = "cuda"
    for name, H, E, k in SHAPES:
        x = torch.randn(T, H, device=d, dtype=torch.bfloat16)
        ids = torch.rand(T, E, device=d).topk(k, dim=1).indices
        flat = ids.reshape(-1)
        order = torch.sort(flat, stable=True).indices          # expert-major, token ascending
        src = order // k
        gather_us = timed(lambda: x.index_select(0, src))
        y = x.index_select(0, src)
        inv = torch.empty_like(order)
        inv[order] = torch.arange(order.numel(), device=d)
        w = torch.full((T, k, 1), 1.0 / k, device=d)
        unpermute_us = timed(lambda: (y[inv].view(T, k, H).float() * w).sum(1).to(torch.bfloat16))
        print(f"{name}.gather_us {gather_us:.2f}")
        print(f"{name}.unpermute_us {unpermute_us:.2f}")
        print(f"{name}.sort_gather_us {timed(lambda: x.index_select(0, torch.sort(flat, stable=True).indices // k)):.2f}")
        print(f"{name}.quant_us {timed(lambda: act_quant(x)):.2f}")
        del y, inv
        counts = torch.bincount(flat, minlength=E)
        tpe = [int(c) for c in ((counts + 127) // 128 * 128).tolist()]
        xp = torch.randn(sum(tpe), H, device=d, dtype=torch.bfloat16)
        print(f"{name}.ftsq_us {timed(lambda: transpose_split_quant(xp, tpe)):.2f}")
        del xp, x
    routing(d)


def act_quant(x):
    """Eager DeepSeek act_quant: 1x128 groups, scale = max(amax, 1e-4) / 448, q = x / scale."""
    T, H = x.shape
    g = x.view(T, H // 128, 128).float()
    s = g.abs().amax(-1, keepdim=True).clamp(min=1e-4) / 448.0
    return (g / s).to(torch.float8_e4m3fn).view(T, H), s.squeeze(-1)


def transpose_split_quant(x, tpe):
    """Eager fused_transpose_split_quant: 128-token x 1-column blocks, s = 448 / amax, cast, then the
    per-expert split and transpose to [H, n_e]."""
    m, H = x.shape
    g = x.view(m // 128, 128, H).float()
    amax = g.abs().amax(1, keepdim=True)
    s = torch.where(amax == 0, torch.ones_like(amax), 448.0 / amax)
    q = (g * s).clamp(-448.0, 448.0).to(torch.float8_e4m3fn).view(m, H)
    return [part.t().contiguous() for part in torch.split(q, tpe)], (1.0 / s).view(m // 128, H)


def routing(d, T=65536):
    g = torch.Generator(device=d).manual_seed(11)
    logits = torch.rand(T, 256, device=d, generator=g) * 8 - 4
    bias = torch.rand(256, device=d, generator=g) * 0.2 - 0.1

    def deepseek():
        s = logits.sigmoid()
        c = s + bias
        gs = c.view(T, 8, 32).topk(2, dim=-1).values.sum(-1)
        keep = torch.zeros(T, 8, device=d).scatter_(1, gs.topk(4, dim=-1).indices, 1.0)
        c = c.masked_fill(keep.unsqueeze(-1).expand(T, 8, 32).reshape(T, 256) == 0, float("-inf"))
        ids = c.topk(8, dim=-1).indices
        w = s.gather(1, ids)
        return ids, w / (w.sum(-1, keepdim=True) + 1e-20) * 2.5

    def softmax(lg):
        w, ids = lg.softmax(-1).topk(8, dim=-1)
        return ids, w / w.sum(-1, keepdim=True)

    l128 = logits[:, :128].contiguous()
    print(f"routing.deepseek_us {timed(deepseek):.2f}")
    print(f"routing.softmax256_us {timed(lambda: softmax(logits)):.2f}")
    print(f"routing.softmax128_us {timed(lambda: softmax(l128)):.2f}")


if __name__ == "__main__":
    main()
