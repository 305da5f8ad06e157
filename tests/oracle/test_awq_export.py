#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Oracle: lowbit's AutoAWQ GEMM export (ANCHORS.md §3.2) and the AWQ / GPTQ import checks.

A tiny bf16 llama is quantized by tests/tools/quant_export_tool (AutoAWQ's RTN formula, q/k/v input channels scaled
and input_layernorm divided by the same factors, as AWQ's folding does), then:
  - qweight/qzeros/scales are unpacked with a numpy re-implementation of AutoAWQ's / transformers' unpack_awq +
    reverse_awq_order (shifts arange(0, 32, 4), AWQ_REVERSE_ORDER [0, 4, 1, 5, 2, 6, 3, 7]) and
    W = (iweight - izeros[k // g]) * scales[k // g], transposed; it must equal lowbit's dequantization (what the
    runtime multiplies by, written by the tool) exactly, and be close to the (scaled) source weights;
  - the replaced norms are bf16(norm / s), other tensors are bit for bit the source's; configs carry the keys
    transformers' AwqConfig and AutoAWQ read;
  - `lowbit perplexity` runs on the export (close to the float model), and refuses: other versions / backend /
    bits (exit 4 naming them), a config group size that does not fit the tensors (exit 3 naming the tensor);
  - GPTQ: a sym v1 export whose config says gptq_v2, a v2 asym export whose config says gptq, and a bits value that
    does not fit qweight all exit 3 with the evidence; agreeing exports (v1/v2, sym/asym) load.
Skips (77) when the tool or the tiny-model fixture is unavailable.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import load_raw  # noqa: E402

BIN = os.environ.get("LOWBIT_BIN")
TOOLS = os.environ.get("LOWBIT_TOOLS_DIR")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(TOOLS or "", "quant_export_tool")
if not BIN or not TOOLS or not os.path.exists(TOOL):
    print("LOWBIT_BIN / quant_export_tool not available")
    sys.exit(77)

AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)




def to_bf16_bits(x):  # round to nearest even, as torch does
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def unpack_awq(qweight, qzeros, bits=4):
    """AutoAWQ awq/utils/packing_utils.py unpack_awq + reverse_awq_order, in numpy."""
    shifts = np.arange(0, 32, bits, dtype=np.uint32)
    iw = (qweight.view(np.uint32)[:, :, None] >> shifts[None, None, :]).reshape(qweight.shape[0], -1)
    iz = (qzeros.view(np.uint32)[:, :, None] >> shifts[None, None, :]).reshape(qzeros.shape[0], -1)
    order = np.arange(iw.shape[-1]).reshape(-1, 32 // bits)[:, AWQ_REVERSE_ORDER].reshape(-1)
    iw, iz = iw[:, order], iz[:, order]
    mask = (1 << bits) - 1
    return (iw & mask).astype(np.int32), (iz & mask).astype(np.int32)


def dequantize_gemm(qweight, qzeros, scales, group):
    """AutoAWQ dequantize_gemm: (iweight - izeros.repeat_interleave(g)) * scales.repeat_interleave(g); [K, N]."""
    iw, iz = unpack_awq(qweight, qzeros)
    z = np.repeat(iz, group, axis=0)
    s = np.repeat(scales.astype(np.float32), group, axis=0)
    return ((iw - z).astype(np.float32) * s).T  # nn.Linear orientation [N, K]


def run(args, expect=0):
    p = subprocess.run(args, capture_output=True, text=True)
    if expect is not None and p.returncode != expect:
        print(" ".join(args), "->", p.returncode, p.stdout, p.stderr)
    return p


def ppl(model, text):
    p = run([BIN, "perplexity", "-m", model, "-f", text, "-c", "64", "--chunks", "4", "--json", "-t", "2"], None)
    return json.loads(p.stdout)["ppl"] if p.returncode == 0 else None, p


def with_config(src, dst, edit):
    shutil.copytree(src, dst)
    cfg = json.load(open(os.path.join(dst, "config.json")))
    edit(cfg["quantization_config"])
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))
    return dst


def check_awq(tmp, src, text, base_ppl):
    out, deq = os.path.join(tmp, "awq"), os.path.join(tmp, "awq.deq.safetensors")
    p = run([TOOL, "awq", src, out, deq, "32", "--fold"])
    check(p.returncode == 0, f"quant_export_tool awq: {p.stderr}")
    if p.returncode:
        return
    orig = load_raw(os.path.join(src, "model.safetensors"))
    q = load_raw(os.path.join(out, "model.safetensors"))
    ours = load_raw(deq)
    modules = sorted(k[:-len(".qweight")] for k in q if k.endswith(".qweight"))
    check(len(modules) == 14, f"{len(modules)} AWQ linears")
    for m in modules:
        W = orig[m + ".weight"][0]
        N, K = W.shape
        qw, qz, sc = q[m + ".qweight"][0], q[m + ".qzeros"][0], q[m + ".scales"][0]
        check(qw.shape == (K, N // 8) and qw.dtype == np.int32, f"{m}.qweight {qw.shape}")
        check(qz.shape == (K // 32, N // 8) and qz.dtype == np.int32, f"{m}.qzeros {qz.shape}")
        check(sc.shape == (K // 32, N) and sc.dtype == np.float16, f"{m}.scales {sc.shape} {sc.dtype}")
        check(m + ".weight" not in q, f"{m}.weight still present")
        Wq = dequantize_gemm(qw, qz, sc, 32)
        check(np.array_equal(Wq, ours[m + ".weight"][0]), f"{m}: AutoAWQ unpack != lowbit dequantization "
              f"(max diff {np.abs(Wq - ours[m + '.weight'][0]).max()})")
        if any(m.endswith(x) for x in ("q_proj", "k_proj", "v_proj")):
            W = W * (1.0 + 0.5 * np.sin(np.arange(K, dtype=np.float32)))[None, :]
        rel = np.linalg.norm(Wq - W) / np.linalg.norm(W)
        check(rel < 0.15, f"{m}: relative error {rel:.3f} vs the source")
        _, iz = unpack_awq(qw, qz)
        check(iz.min() >= 0 and iz.max() <= 15 and abs(iz.mean() - 7.5) < 1.5, f"{m}: zeros look wrong {iz.mean()}")
    for k, (a, raw, dt) in orig.items():
        if k[:-len(".weight")] in modules:
            continue
        if k.endswith("input_layernorm.weight"):
            s = 1.0 + 0.5 * np.sin(np.arange(a.shape[0], dtype=np.float32))
            want = to_bf16_bits(a / s)
            got = np.frombuffer(q[k][1], np.uint16)
            check(q[k][2] == "BF16" and np.abs(got.astype(np.int32) - want.astype(np.int32)).max() <= 1,
                  f"{k}: not bf16(norm / s)")
            continue
        check(k in q and q[k][1] == raw, f"{k} not copied bit for bit")
    cfg = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
    check(cfg.get("quant_method") == "awq" and cfg.get("bits") == 4 and cfg.get("group_size") == 32 and
          cfg.get("zero_point") is True and cfg.get("version") == "gemm" and "modules_to_not_convert" in cfg,
          f"config.json quantization_config {cfg}")
    ac = json.load(open(os.path.join(out, "quant_config.json")))
    check(ac.get("zero_point") is True and ac.get("q_group_size") == 32 and ac.get("w_bit") == 4 and
          ac.get("version", "").lower() == "gemm", f"quant_config.json {ac}")
    check(os.path.exists(os.path.join(out, "tokenizer.json")), "tokenizer.json not copied")
    # The runtime loads it; folding + 4-bit RTN stays close to the float model.
    q_ppl, p = ppl(out, text)
    check(q_ppl is not None and abs(q_ppl / base_ppl - 1) < 0.2, f"awq ppl {q_ppl} vs float {base_ppl}: {p.stderr}")
    # Refusals.
    for key, value, code, needle in [("version", "gemv", 4, "'gemv'"), ("version", "marlin", 4, "'marlin'"),
                                     ("version", "exllama", 4, "'exllama'"), ("backend", "llm-awq", 4, "'llm-awq'"),
                                     ("bits", 8, 4, "8 bits"), ("group_size", 64, 3, "'qzeros'")]:
        d = with_config(out, os.path.join(tmp, f"awq_{key}_{value}"), lambda c: c.__setitem__(key, value))
        _, p = ppl(d, text)
        check(p.returncode == code and needle in p.stderr and "Traceback" not in p.stderr,
              f"awq {key}={value}: exit {p.returncode} (want {code}), stderr {p.stderr.strip()}")
    return base_ppl


def check_gptq(tmp, src, text):
    dirs = {}
    for mode in ["gptq-v1", "gptq-v2", "gptq-v1-asym", "gptq-v2-asym"]:
        out = os.path.join(tmp, mode)
        p = run([TOOL, mode, src, out, out + ".deq.safetensors", "32"])
        check(p.returncode == 0, f"quant_export_tool {mode}: {p.stderr}")
        dirs[mode] = out
        if p.returncode == 0:
            _, pp = ppl(out, text)
            check(pp.returncode == 0, f"{mode} does not load: {pp.stderr}")
            check("agree" in pp.stderr or pp.returncode != 0, f"{mode}: no convention log line: {pp.stderr}")
    cases = [("gptq-v1", lambda c: c.__setitem__("checkpoint_format", "gptq_v2"), "data says 'gptq'"),
             ("gptq-v2", lambda c: c.pop("checkpoint_format"), "data says 'gptq_v2'"),
             ("gptq-v2-asym", lambda c: c.__setitem__("checkpoint_format", "gptq"), "asymmetric zero points"),
             ("gptq-v1-asym", lambda c: c.__setitem__("checkpoint_format", "gptq_v2"), "data says 'gptq'"),
             ("gptq-v1", lambda c: c.__setitem__("bits", 8), "looks like 4-bit"),
             ("gptq-v1", lambda c: c.__setitem__("group_size", 64), "groups")]
    for i, (mode, edit, needle) in enumerate(cases):
        d = with_config(dirs[mode], os.path.join(tmp, f"gptq_bad{i}"), edit)
        _, p = ppl(d, text)
        check(p.returncode == 3 and needle in p.stderr and "Traceback" not in p.stderr,
              f"gptq case {i} ({mode}): exit {p.returncode}, stderr {p.stderr.strip()}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny")
        r = subprocess.run([sys.executable, os.path.join(SRC, "tests/fixtures/make_tiny_llama.py"), "--out", src,
                            "--hidden", "128", "--ff", "256", "--heads", "4", "--kv-heads", "2", "--dtype", "bf16",
                            "--tokenizer", "--seed", "11"], capture_output=True, text=True)
        if r.returncode != 0:
            print("make_tiny_llama.py failed (needs numpy + tokenizers):", r.stderr[-500:])
            sys.exit(77)
        text = os.path.join(tmp, "text.txt")
        with open(text, "w") as f:
            for i in range(120):
                f.write(f"Line {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13} times.\n")
        base_ppl, p = ppl(src, text)
        check(base_ppl is not None, f"float model perplexity failed: {p.stderr}")
        if base_ppl is not None:
            check_awq(tmp, src, text, base_ppl)
        check_gptq(tmp, src, text)
    if FAILS:
        print(f"{len(FAILS)} failures")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
