#!/usr/bin/env python3
"""PyTorch baselines for `OpsBench` (run in the same session on the GPU machine).

Prints lines `<shape>.<metric>_us <microseconds>`: the index_select gather half of a permute and the
eager unpermute `(y[inv].view(T,k,H).float() * w).sum(1).bf16()` for the same shapes, routing and
token count as org.moespark.bench.OpsBench (performance-anchors.md §3.2 methodology).
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


if __name__ == "__main__":
    main()
