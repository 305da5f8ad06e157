#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The PyPI libraries' GPU kernels for the Hugging Face quantized layouts on issue 12's shapes, for the table that
# tests/tools/gpu_matmul_bench prints for lowbit's kernels (run both in one device call): fp16 cuBLAS
# (torch.nn.functional.linear), torch's int4 tinygemm (_weight_int4pack_mm, group 128), bitsandbytes NF4
# (matmul_4bit) and LLM.int8 (Linear8bitLt, threshold 6.0, outliers present), HQQ 4-bit g64 (HQQLinear, its torch
# backend). y = x · Wᵀ for W [out, in], x [M, in]; time per call in µs = median of CUDA-event timings of `--reps`
# calls after warm-up; GB/s = weight bytes of the layout / time. A library that is not installed, or fails,
# prints one line saying so and the others still run.
#   python3 bench/gpu_hf_peers.py [--shapes 11008x4096,4096x11008] [--m 1,16,256] [--reps 50]
# Shapes are OUTxIN (rows x columns of W), as gpu_matmul_bench's --shapes.
import argparse
import statistics
import sys

import torch


def time_us(fn, reps):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        ts.append(s.elapsed_time(e) * 1000.0)
    return statistics.median(ts)


def peers(out_f, in_f):
    """(name, weight bytes, make(x_fp16) -> callable) per library, built once per shape."""
    g = torch.Generator(device="cuda").manual_seed(0)
    w = (torch.randn(out_f, in_f, device="cuda", generator=g) * 0.02).half()
    yield "fp16 cuBLAS", w.numel() * 2, lambda x: (lambda: torch.nn.functional.linear(x, w))

    def tinygemm():
        gs = 128
        wf = w.float().reshape(out_f, in_f // gs, gs)
        lo, hi = wf.amin(-1, keepdim=True), wf.amax(-1, keepdim=True)
        scale = ((hi - lo) / 15).clamp(min=1e-8)
        q = ((wf - lo) / scale).round().clamp(0, 15).to(torch.int32).reshape(out_f, in_f)
        zero = lo + 8 * scale  # tinygemm: w = (q - 8) * scale + zero
        sz = torch.cat([scale, zero], -1).squeeze(-2).reshape(out_f, in_f // gs, 2).transpose(0, 1).contiguous()
        sz = sz.bfloat16()
        try:  # torch >= 2.5: uint8 [n, k / 2]
            packed = torch._convert_weight_to_int4pack((q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8), 8)
        except Exception:  # older: int32 [n, k]
            packed = torch._convert_weight_to_int4pack(q, 8)
        return lambda x: (lambda xb=x.bfloat16(): torch._weight_int4pack_mm(xb, packed, gs, sz))

    try:
        yield "torch int4 tinygemm g128", out_f * in_f // 2 + out_f * in_f // 128 * 4, tinygemm()
    except Exception as e:
        print(f"# torch int4 tinygemm unavailable: {type(e).__name__}: {e}".splitlines()[0])

    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as F

        wq, state = F.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=True)
        yield "bitsandbytes NF4 (dq)", wq.numel() + out_f * in_f // 64, lambda x: (
            lambda: bnb.matmul_4bit(x, wq.t(), quant_state=state))
        lin = bnb.nn.Linear8bitLt(in_f, out_f, bias=False, has_fp16_weights=False, threshold=6.0)
        lin.weight = bnb.nn.Int8Params(w.cpu(), requires_grad=False, has_fp16_weights=False)
        lin = lin.cuda()
        yield "bitsandbytes LLM.int8 t=6", out_f * in_f + out_f * 4, lambda x: (lambda: lin(x))
    except Exception as e:
        print(f"# bitsandbytes unavailable: {type(e).__name__}: {e}".splitlines()[0])

    try:
        from hqq.core.quantize import BaseQuantizeConfig, HQQBackend, HQQLinear

        lin = torch.nn.Linear(in_f, out_f, bias=False, dtype=torch.float16, device="cuda")
        lin.weight.data.copy_(w)
        hq = HQQLinear(lin, BaseQuantizeConfig(nbits=4, group_size=64), compute_dtype=torch.float16, device="cuda")
        HQQLinear.set_backend(HQQBackend.PYTORCH)
        yield "hqq 4-bit g64 (torch)", out_f * in_f // 2 + out_f * in_f // 64 * 4, lambda x: (lambda: hq(x))
    except Exception as e:
        print(f"# hqq unavailable: {type(e).__name__}: {e}".splitlines()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="11008x4096,4096x11008")
    ap.add_argument("--m", default="1,16,256")
    ap.add_argument("--reps", type=int, default=50)
    a = ap.parse_args()
    ms = [int(v) for v in a.m.split(",")]
    print(f"# {torch.cuda.get_device_name()} torch {torch.__version__}")
    print(f"{'library':<26} {'shape':<12} {'m':>4} {'us':>9} {'GB/s':>7}")
    for shape in a.shapes.split(","):
        out_f, in_f = (int(v) for v in shape.split("x"))
        for name, nbytes, make in peers(out_f, in_f):
            for m in ms:
                x = (torch.randn(m, in_f, device="cuda") * 1.0).half()
                if "int8" in name:
                    x[:, :: max(1, in_f // 16)] = 8.0  # outlier columns above the threshold
                try:
                    us = time_us(make(x), a.reps)
                    print(f"{name:<26} {shape:<12} {m:>4} {us:9.1f} {nbytes / us / 1e3:7.0f}")
                except Exception as e:
                    print(f"{name:<26} {shape:<12} {m:>4} failed: {type(e).__name__}: {e}".splitlines()[0])
            sys.stdout.flush()


if __name__ == "__main__":
    main()
