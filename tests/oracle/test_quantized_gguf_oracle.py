# SPDX-License-Identifier: MIT
"""Oracle: quantized Hugging Face directories -> GGUF (`lowbit convert DIR` and `lowbit quantize -m DIR`).

A tiny bf16 llama (tests/fixtures/make_tiny_llama.py) is quantized by lowbit to three layouts whose records numpy
can dequantize independently: lowbit_rtn (int_group_v1 bit stream), bitsandbytes LLM.int8 (w = q * SCB / 127) and
GPTQ (AutoGPTQ's unpacking formulas, v1 zeros + 1). `lowbit convert DIR --type f32` is read with the PyPI `gguf`
package: every Linear must equal the numpy dequantization (Q/K rows permuted as llama.cpp's convert does) to f32
rounding, every other tensor the source's bf16 value exactly, general.file_type 0, and no record tensor (qweight,
SCB, ...) may be left. `lowbit quantize -m DIR --method q8_0` must be within Q8_0's error of the same dequantized
weights (gguf.quants.dequantize). numpy + gguf only (the checkpoints are parsed by hand).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import load_arrays, permute  # noqa: E402

try:
    import gguf
    from gguf import GGUFReader
except ImportError:
    print("gguf not installed")
    sys.exit(77)

BIN = os.environ.get("LOWBIT_BIN")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
if not BIN:
    print("LOWBIT_BIN not set")
    sys.exit(77)

N_HEAD, N_KV = 4, 2
LINEARS = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
           "mlp.down_proj": "ffn_down"}
OTHERS = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def run(args):
    p = subprocess.run([BIN] + args, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout, p.stderr)
        raise SystemExit(f"lowbit {' '.join(args)} exited {p.returncode}")
    return p


def deq_rtn(t, m, rows, cols, bits=4, g=128):
    qw, s, z = t[m + ".qweight"], t[m + ".scales"], t[m + ".zeros"]
    b = np.unpackbits(qw.view(np.uint8).reshape(rows, -1), axis=1, bitorder="little")[:, :cols * bits]
    q = (b.reshape(rows, cols, bits) * (1 << np.arange(bits))).sum(axis=2).astype(np.float32)
    sf = np.repeat(s.astype(np.float32), g, axis=1)
    zf = np.repeat(z.astype(np.float32), g, axis=1)
    return (q - zf) * sf


def deq_int8(t, m, rows, cols):
    return t[m + ".weight"].astype(np.float32) * t[m + ".SCB"][:, None] * np.float32(1.0 / 127.0)


def deq_gptq(t, m, rows, cols, bits=4):
    qw, qz = t[m + ".qweight"].view(np.uint32), t[m + ".qzeros"].view(np.uint32)
    sc, gi = t[m + ".scales"].astype(np.float32), t[m + ".g_idx"]
    wf = np.arange(0, 32, bits, dtype=np.uint32)
    w = ((qw[:, None, :] >> wf[None, :, None]) & (2**bits - 1)).reshape(-1, qw.shape[1])  # [K, N]
    z = ((qz[:, :, None] >> wf[None, None, :]) & (2**bits - 1)).reshape(qz.shape[0], -1) + 1  # v1
    return (sc[gi] * (w.astype(np.float32) - z[gi].astype(np.float32))).T  # [N, K]


def gguf_name(hf):
    if hf in OTHERS:
        return OTHERS[hf]
    p = hf.split(".")
    if p[-1] == "weight" and ".".join(p[3:5]) in LINEARS:
        return f"blk.{p[2]}.{LINEARS['.'.join(p[3:5])]}.weight"
    return f"blk.{p[2]}." + {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}[p[3]] + ".weight"


def expected_weights(src, qdir, deq):
    """GGUF name -> f32 array lowbit must write for the dequantized directory."""
    s, q = load_arrays(os.path.join(src, "model.safetensors")), load_arrays(os.path.join(qdir, "model.safetensors"))
    out = {}
    for name, w in s.items():
        g = gguf_name(name)
        module = name[:-len(".weight")]
        if name.startswith("model.layers.") and ".".join(name.split(".")[3:5]) in LINEARS:
            rows, cols = w.shape
            v = deq(q, module, rows, cols)
            check(v.shape == w.shape, f"{name}: numpy dequantization shape {v.shape}")
            rel = float(np.linalg.norm(v - w) / np.linalg.norm(w))
            check(1e-4 < rel < 0.3, f"{qdir}: {name} dequantized relative error {rel:.4f} (not quantized?)")
        else:
            check(name in q, f"{qdir}: {name} not kept")
            v = q[name].astype(np.float32)
        if g.endswith("attn_q.weight"):
            v = permute(v, N_HEAD)
        elif g.endswith("attn_k.weight"):
            v = permute(v, N_KV)
        out[g] = v
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny")
        subprocess.run([sys.executable, os.path.join(SRC, "tests/fixtures/make_tiny_llama.py"), "--out", src,
                        "--hidden", "128", "--ff", "256", "--heads", str(N_HEAD), "--kv-heads", str(N_KV),
                        "--dtype", "bf16", "--tokenizer", "--seed", "21"], check=True, capture_output=True)
        calib = os.path.join(tmp, "calib.txt")
        with open(calib, "w") as f:
            for i in range(200):
                f.write(f"Sentence {i}: the quick brown fox jumps over the lazy dog, {i * 7 % 13} times.\n")
        cases = [("rtn", [], deq_rtn, "lowbit_rtn int4 g128 asym"),
                 ("int8", [], deq_int8, "bitsandbytes LLM.int8"),
                 ("gptq", ["--calib", calib, "--nsamples", "4", "--seqlen", "32"], deq_gptq, "gptq int4 g128 asym")]
        for method, extra, deq, describe in cases:
            qdir = os.path.join(tmp, method)
            run(["quantize", "-m", src, "-o", qdir, "--method", method, "--no-progress"] + extra)
            want = expected_weights(src, qdir, deq)

            out = os.path.join(tmp, method + ".f32.gguf")
            p = run(["convert", qdir, "-o", out, "--type", "f32", "--no-progress"])
            check(f"lowbit: warning: '{qdir}' is already quantized ({describe})" in p.stderr and "f32 output is its dequantized weights, exact;" in p.stderr,
                  f"{method}: convert warning: {p.stderr}")
            r = GGUFReader(out)
            check(int(r.get_field("general.file_type").contents()) == 0, f"{method}: general.file_type")
            got = {t.name: t for t in r.tensors}
            check(set(got) == set(want), f"{method}: tensor names differ: {sorted(set(got) ^ set(want))}")
            for g, w in want.items():
                if g not in got:
                    continue
                t = got[g]
                check(t.tensor_type == gguf.GGMLQuantizationType.F32, f"{method}: {g} is {t.tensor_type.name}")
                a = np.asarray(t.data, dtype=np.float32).reshape(w.shape)
                err = float(np.max(np.abs(a - w)))
                check(err <= 1e-6 * float(np.max(np.abs(w))), f"{method}: {g} differs from numpy by {err:.3g}")

            q8 = os.path.join(tmp, method + ".q8_0.gguf")
            p = run(["quantize", "-m", qdir, "-o", q8, "--method", "q8_0", "--no-progress"])
            check("requantizing compounds the error" in p.stderr, f"{method}: quantize warning: {p.stderr}")
            for t in GGUFReader(q8).tensors:
                w = want[t.name]
                d = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(w.shape)
                rel = float(np.linalg.norm(d - w) / np.linalg.norm(w))
                check(rel < 0.01, f"{method}: q8_0 {t.name} ({t.tensor_type.name}) relative error {rel:.4f}")
    if FAILS:
        print(f"{len(FAILS)} failure(s)")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
