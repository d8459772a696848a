#!/usr/bin/env python3
"""Tiny random Hugging Face MoE blocks and their reference outputs, for moespark's conformance tests.

Run on a machine with PyTorch and transformers 5.17 (the GPU machine; CPU compute is used so the
reference is deterministic):

    python3 tools/hf-reference/make_fixtures.py OUT_DIR

For each case it builds a 1-layer model of one family from a tiny config, re-draws the MoE block's
parameters (N(0, std²), biases included) so that routing is far from uniform, runs the MoE block
(`model.model.layers[0].mlp`) on random x [T, H] with the eager expert loop, and writes
OUT_DIR/<case>/:
  config.json        the model config (as save_pretrained writes it)
  model.safetensors  only the layer-0 MoE block tensors, with save_pretrained's on-disk names
                     (per-expert hub layout, or the fused v5 layout for *_fused cases)
  ref.safetensors    x [T,H] (model dtype), y [T,H] F32, topk_ids [T,K] I32, topk_weights [T,K] F32
The routing decisions are what the HF block passed to its experts module (captured with a forward
pre-hook), not a re-implementation. DeepSeek-V3 selects with an unsorted top-k, so compare the
(id, weight) pairs of a token as a set (e.g. sorted by id).
"""
import json
import zlib
import os
import shutil
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file, save_file

T = 37  # odd token count on purpose


def tiny(model_type, **kw):
    common = dict(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  num_key_value_heads=1, max_position_embeddings=64, tie_word_embeddings=False)
    common.update(kw)
    return transformers.AutoConfig.for_model(model_type, **common)


def cases():
    return {
        "mixtral": (tiny("mixtral", num_local_experts=8, num_experts_per_tok=2, intermediate_size=24, head_dim=16), 0.3),
        "qwen2_moe": (tiny("qwen2_moe", num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                           shared_expert_intermediate_size=40, intermediate_size=64, norm_topk_prob=False,
                           decoder_sparse_step=1, mlp_only_layers=[]), 0.3),
        "qwen2_moe_norm": (tiny("qwen2_moe", num_experts=8, num_experts_per_tok=3, moe_intermediate_size=24,
                                shared_expert_intermediate_size=40, intermediate_size=64, norm_topk_prob=True,
                                decoder_sparse_step=1, mlp_only_layers=[]), 0.3),
        "qwen3_moe": (tiny("qwen3_moe", num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                           intermediate_size=64, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                           head_dim=16), 0.3),
        "olmoe": (tiny("olmoe", num_experts=16, num_experts_per_tok=4, intermediate_size=16, norm_topk_prob=False), 0.3),
        "deepseek_v3": (tiny("deepseek_v3", n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
                             routed_scaling_factor=2.5, norm_topk_prob=True, n_shared_experts=1,
                             moe_intermediate_size=16, intermediate_size=64, first_k_dense_replace=0,
                             q_lora_rank=16, kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8,
                             v_head_dim=8, head_dim=8), 0.3),
        "gpt_oss": (tiny("gpt_oss", num_local_experts=8, num_experts_per_tok=2, intermediate_size=24, head_dim=16,
                         swiglu_limit=7.0), 0.8),
    }


def capture_routing(mlp):
    """Pre-hook on the experts module: records (top_k_index, top_k_weights) as HF passed them."""
    seen = {}

    def hook(module, args, kwargs):
        vals = list(args) + list(kwargs.values())
        ints = [v for v in vals if torch.is_tensor(v) and not v.is_floating_point()]
        floats = [v for v in vals[1:] if torch.is_tensor(v) and v.is_floating_point()]
        seen["ids"] = ints[0]
        seen["weights"] = floats[0]

    mlp.experts.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def redraw(mlp, std, gen):
    with torch.no_grad():
        for name, p in list(mlp.named_parameters()) + list(mlp.named_buffers()):
            if not p.is_floating_point():
                continue
            s = std if p.dim() > 1 else std * 0.5
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * s)


def run_case(name, cfg, std, dtype, out_dir, fused=False):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    try:
        cfg._experts_implementation = "eager"
    except Exception:
        pass
    model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
    model.eval()
    mlp = model.model.layers[0].mlp
    redraw(mlp, std, gen)
    model = model.to(dtype)
    mlp = model.model.layers[0].mlp
    routing = capture_routing(mlp)

    H = cfg.hidden_size
    x = torch.randn(T, H, generator=gen, dtype=torch.float32).to(dtype)
    with torch.no_grad():
        out = mlp(x[None])
    y = out[0] if isinstance(out, tuple) else out
    y = y.reshape(T, H).float()
    ids = routing["ids"].reshape(T, -1)
    w = routing["weights"]
    if w.shape[-1] != ids.shape[-1]:  # dense [T, E] scores: take the selected ones
        w = w.reshape(T, -1).gather(1, ids)
    w = w.reshape(T, -1).float()

    case_dir = os.path.join(out_dir, name)
    os.makedirs(case_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"save_original_format": False} if fused else {}
        model.save_pretrained(tmp, **kwargs)
        shutil.copy(os.path.join(tmp, "config.json"), os.path.join(case_dir, "config.json"))
        tensors = {}
        for f in sorted(os.listdir(tmp)):
            if f.endswith(".safetensors"):
                tensors.update(load_file(os.path.join(tmp, f)))
    block = {k: v.contiguous() for k, v in tensors.items()
             if ".layers.0.mlp." in k or ".layers.0.block_sparse_moe." in k}
    save_file(block, os.path.join(case_dir, "model.safetensors"), metadata={"format": "pt"})
    save_file({"x": x.contiguous(), "y": y.contiguous(), "topk_ids": ids.to(torch.int32).contiguous(),
               "topk_weights": w.contiguous()}, os.path.join(case_dir, "ref.safetensors"))
    extra = ""
    if cfg.model_type == "gpt_oss":
        # fraction of gate/up pre-activations that hit the ±7 clamp, to prove the clamp is exercised
        e = mlp.experts
        with torch.no_grad():
            h = torch.einsum("th,ehf->etf", x.float(), e.gate_up_proj.float()) + e.gate_up_proj_bias.float()[:, None, :]
        extra = f" clamp-hit={float((h.abs() > 7.0).float().mean()):.3f}"
    print(f"{name:28s} dtype={str(dtype).split('.')[-1]:8s} tensors={len(block):3d} "
          f"|y|max={float(y.abs().max()):.3f} K={ids.shape[1]}{extra}", flush=True)
    return {"case": name, "model_type": cfg.model_type, "dtype": str(dtype).split(".")[-1], "tokens": T,
            "hidden": H, "top_k": int(ids.shape[1]), "layout": "fused" if fused else "per-expert"}


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(4)
    manifest = []
    for name, (cfg, std) in cases().items():
        manifest.append(run_case(name + "_fp32", cfg, std, torch.float32, out_dir))
        manifest.append(run_case(name + "_bf16", cfg, std, torch.bfloat16, out_dir))
    # transformers v5's fused on-disk layout (save_original_format=False) for two families
    for name in ("mixtral", "qwen3_moe"):
        cfg, std = cases()[name]
        manifest.append(run_case(name + "_fused_fp32", cfg, std, torch.float32, out_dir, fused=True))
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "cases": manifest}, f, indent=1)
    print("transformers", transformers.__version__, "torch", torch.__version__)


if __name__ == "__main__":
    main()
