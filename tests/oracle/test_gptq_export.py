#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Oracle: `lowbit quantize --method gptq` writes the Hugging Face GPTQ layout (ANCHORS.md §3.1).

A tiny bf16 llama with a tokenizer (tests/fixtures/make_tiny_llama.py) is quantized with a small calibration
text. The checkpoint is parsed by hand (numpy has no bf16) and unpacked with AutoGPTQ's own formulas
(qweight >> arange(0, 32, bits) & maxq along K, qzeros the same along N, v1 zeros + 1; W = scales[g_idx] *
(q - z[g_idx])); the result must be close to the source weights, other tensors must be copied bit for bit,
v1 and --gptq-v2 must differ by exactly 0x11111111 per qzeros word (GPTQModel's v1 -> v2 conversion), act-order
g_idx must put exactly group_size channels in each group, and the configs must carry the GPTQ keys.
Skips (77) while the binary does not offer the gptq method.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import load_raw  # noqa: E402

BIN = os.environ.get("LOWBIT_BIN")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
if not BIN:
    print("LOWBIT_BIN not set")
    sys.exit(77)

FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)




def unpack_autogptq(q, name, bits, v1):
    qw, qz = q[name + ".qweight"].view(np.uint32), q[name + ".qzeros"].view(np.uint32)
    sc, gi = q[name + ".scales"].astype(np.float32), q[name + ".g_idx"]
    wf = np.arange(0, 32, bits, dtype=np.uint32)
    w = ((qw[:, None, :] >> wf[None, :, None]) & (2**bits - 1)).reshape(-1, qw.shape[1])  # [K, N]
    z = ((qz[:, :, None] >> wf[None, None, :]) & (2**bits - 1)).reshape(qz.shape[0], -1)  # [G, N]
    if v1:
        z = z + 1
    return (sc[gi] * (w.astype(np.float32) - z[gi].astype(np.float32))).T, gi  # [N, K]


def run(args, expect=0):
    p = subprocess.run([BIN] + args, capture_output=True, text=True)
    if expect is not None and p.returncode != expect:
        print(p.stdout, p.stderr)
    return p


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny")
        subprocess.run([sys.executable, os.path.join(SRC, "tests/fixtures/make_tiny_llama.py"), "--out", src,
                        "--hidden", "128", "--ff", "256", "--heads", "4", "--kv-heads", "2", "--dtype", "bf16",
                        "--tokenizer", "--seed", "5"], check=True, capture_output=True)
        calib = os.path.join(tmp, "calib.txt")
        with open(calib, "w") as f:
            for i in range(200):
                f.write(f"Sentence {i}: the quick brown fox jumps over the lazy dog, {i * 7 % 13} times.\n")
        base = ["quantize", "-m", src, "--method", "gptq", "--calib", calib, "--nsamples", "4", "--seqlen", "32",
                "--group-size", "32"]
        probe = run(base + ["-o", os.path.join(tmp, "probe"), "--bits", "4"], expect=None)
        if probe.returncode != 0 and any(s in probe.stderr for s in ["unknown method", "not available",
                                                                      "not expected", "extra"]):
            print("gptq is not wired into `lowbit quantize` yet:", probe.stderr.strip())
            sys.exit(77)
        check(probe.returncode == 0, f"gptq run failed: {probe.stderr}")
        orig = {k: v for k, v in load_raw(os.path.join(src, "model.safetensors")).items()}
        outs = {}
        # The default is act-order + static groups (g_idx trivial); "act" is act-order with dynamic groups.
        runs = [("v1", ["--no-desc-act"]), ("v2", ["--gptq-v2", "--no-desc-act"]), ("act", ["--no-static-groups"]),
                ("default", [])]
        for tag, extra in runs:
            out = os.path.join(tmp, tag)
            p = run(base + ["-o", out, "--bits", "4"] + extra)
            check(p.returncode == 0, f"{tag}: exit {p.returncode}")
            if p.returncode:
                continue
            q_raw = load_raw(os.path.join(out, "model.safetensors"))
            q = {k: v[0] for k, v in q_raw.items()}
            outs[tag] = q
            qc = json.load(open(os.path.join(out, "quantize_config.json")))
            cfg = json.load(open(os.path.join(out, "config.json")))["quantization_config"]
            for c in (qc, cfg):
                check(c["quant_method"] == "gptq" and c["bits"] == 4 and c["group_size"] == 32, f"{tag}: {c}")
                check(c["checkpoint_format"] == ("gptq_v2" if tag == "v2" else "gptq"), f"{tag}: format {c}")
                check(c["desc_act"] == (tag in ("act", "default")), f"{tag}: desc_act")
                check(c["static_groups"] == (tag == "default"), f"{tag}: static_groups")
            modules = sorted(k[:-len(".qweight")] for k in q if k.endswith(".qweight"))
            check(len(modules) == 14, f"{tag}: {len(modules)} quantized linears")
            for m in modules:
                W = orig[m + ".weight"][0]
                N, K = W.shape
                check(q[m + ".qweight"].shape == (K // 8, N) and q[m + ".qweight"].dtype == np.int32, f"{m} qweight")
                check(q[m + ".qzeros"].shape == (K // 32, N // 8), f"{m} qzeros {q[m + '.qzeros'].shape}")
                check(q[m + ".scales"].shape == (K // 32, N) and q[m + ".scales"].dtype == np.float16, f"{m} scales")
                Wq, gi = unpack_autogptq(q, m, 4, tag != "v2")
                rel = np.linalg.norm(Wq - W) / np.linalg.norm(W)
                check(rel < 0.25, f"{tag} {m}: relative error {rel:.3f}")
                if tag == "act":
                    check(sorted(np.bincount(gi).tolist()) == [32] * (K // 32), f"{m}: act-order group sizes")
                else:
                    check(np.array_equal(gi, np.arange(K) // 32), f"{m}: g_idx")
            for k, (a, raw, _) in orig.items():
                if k[:-len(".weight")] in modules:
                    continue
                check(k in q_raw and q_raw[k][1] == raw, f"{tag}: {k} not copied bit for bit")
        if "v1" in outs and "v2" in outs:
            for k in outs["v1"]:
                if k.endswith(".qzeros"):
                    a, b = outs["v1"][k].view(np.uint32), outs["v2"][k].view(np.uint32)
                    check(np.array_equal(b, a + np.uint32(0x11111111)), f"{k}: v2 != v1 + 0x11111111")
                if k.endswith(".qweight"):
                    check(np.array_equal(outs["v1"][k], outs["v2"][k]), f"{k}: v1/v2 qweight differ")
        # Clean errors.
        p = run(base[:6] + [os.path.join(tmp, "missing.txt")] + base[7:] + ["-o", os.path.join(tmp, "e1")], expect=None)
        check(p.returncode != 0 and "missing.txt" in p.stderr and "Traceback" not in p.stderr, f"missing: {p.stderr}")
        p = run(base[:8] + ["1000", "--seqlen", "32", "-o", os.path.join(tmp, "e2")], expect=None)
        check(p.returncode == 3 and "tokens" in p.stderr, f"too few tokens: {p.returncode} {p.stderr}")
        p = run(base[:10] + ["100000", "-o", os.path.join(tmp, "e3")], expect=None)
        check(p.returncode == 2 and "context" in p.stderr, f"seqlen > ctx: {p.returncode} {p.stderr}")
    if FAILS:
        print(f"{len(FAILS)} failures")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
