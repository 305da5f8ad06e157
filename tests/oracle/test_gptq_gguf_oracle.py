#!/ usr / bin / env python3
#SPDX - License - Identifier : MIT
"""Oracle for GPTQ onto GGUF grids, with the PyPI `gguf` package and numpy (independent of lowbit's code):
  - tests/tools/gptq_gguf_tool (the job's per-linear hook) on seeded layers, every grid type: gguf.quants.dequantize
    of our bytes equals the loop's Ŵ exactly; with H = I (no error feedback) the legacy types' bytes equal
    gguf.quants.quantize (llama.cpp's reference quantizer ported to numpy); with a real H the layer output error
    ‖(W-Ŵ)X‖ is below plain block quantization's (gguf.quants.quantize where gguf-py has it).
  - `lowbit quantize --method gptq --format gguf --type Q4_K_M|Q4_0` on models/lowbit-ref-30m: same metadata, tensor
    order, types and shapes as the plain `--method q4_k_m|q4_0` file; non-linear tensors byte-identical; the linears
    differ from the plain ones yet decode close to the HF weights (Q/K rows permuted as convert_hf_to_gguf.py).
Skips (77) when the tool or the packages are missing.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from oracle_util import load_hf_f32, permute

    import gguf
    from gguf import GGMLQuantizationType as QT
except ImportError as e:
    print("skip:", e)
    sys.exit(77)

BIN = os.environ.get("LOWBIT_BIN")
TOOLS = os.environ.get("LOWBIT_TOOLS_DIR")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(SRC, "models", "lowbit-ref-30m")
failures = []


def check(cond, msg):
    print(("ok:   " if cond else "FAIL: ") + msg)
    if not cond:
        failures.append(msg)


def run_tool(tool, tmp, W, X, qtype):
    n, k = W.shape
    W.tofile(f"{tmp}/w.f32")
    X.tofile(f"{tmp}/x.f32")
    subprocess.run([tool, f"{tmp}/w.f32", str(n), str(k), f"{tmp}/x.f32", str(X.shape[0]), qtype.name,
                    f"{tmp}/out"], check=True, stdout=subprocess.DEVNULL)
    raw = np.fromfile(f"{tmp}/out.gguf_bytes", dtype=np.uint8).reshape(n, -1)
    deq = np.fromfile(f"{tmp}/out.deq.f32", dtype=np.float32).reshape(n, k)
    return raw, deq


def plain(W, qtype):
    try:
        return gguf.quants.quantize(W, qtype)
    except NotImplementedError:
        return None


def layer_checks(tool):
    rng = np.random.default_rng(77)
    n, k, t = 16, 512, 700
    W = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    W[1] = 0
    W[2, 32:64] = 0
    base = rng.standard_normal((t, 1))
    X = ((0.6 * base + rng.standard_normal((t, k))) * np.where(np.arange(k) % 11 == 0, 5.0, 1.0)).astype(np.float32)
    eye = (np.eye(k) * np.sqrt(k / 2)).astype(np.float32)  # H = 2/T XᵀX = I
    with tempfile.TemporaryDirectory() as tmp:
        for qt in (QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q4_K, QT.Q5_K, QT.Q6_K, QT.Q3_K):
            raw, deq = run_tool(tool, tmp, W, X, qt)
            ours = gguf.quants.dequantize(raw, qt)
            check(ours.shape == W.shape and np.array_equal(ours, deq),
                  f"{qt.name}: gguf.quants.dequantize(bytes) == the loop's W-hat")
            ref = plain(W, qt)
            if ref is not None and qt != QT.Q3_K:  # Q3_K has no grid: block quantization with importance
                e_gptq = np.linalg.norm((W - deq) @ X.T)
                e_plain = np.linalg.norm((W - gguf.quants.dequantize(ref, qt)) @ X.T)
                check(e_gptq < 0.9 * e_plain, f"{qt.name}: |(W-What)X| gptq {e_gptq:.4g} < plain {e_plain:.4g}")
                if qt in (QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1):
                    raw_i, _ = run_tool(tool, tmp, W, eye, qt)
                    check(np.array_equal(raw_i, ref), f"{qt.name}: H = I gives gguf.quants.quantize's bytes")


def cli_checks():
    import json
    shared = os.environ.get("LOWBIT_SHARED")
    calib = os.path.join(shared, "data", "corpus", "calib.txt") if shared else None
    if not calib or not os.path.exists(calib):
        calib = "self"
    cfg = json.load(open(os.path.join(MODEL, "config.json")))
    hf = load_hf_f32(MODEL)
    linears = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
    with tempfile.TemporaryDirectory() as tmp:
        for ftype in ("Q4_K_M", "Q4_0"):
            a, b = f"{tmp}/plain.gguf", f"{tmp}/gptq.gguf"
            subprocess.run([BIN, "quantize", "-m", MODEL, "-o", a, "--method", ftype.lower(), "--no-progress"],
                           check=True, capture_output=True)
            r = subprocess.run([BIN, "quantize", "-m", MODEL, "-o", b, "--method", "gptq", "--format", "gguf",
                                "--type", ftype, "--calib", calib, "--nsamples", "4", "--seqlen", "128",
                                "--no-progress"], capture_output=True, text=True)
            check(r.returncode == 0, f"gptq --type {ftype} runs" + ("" if r.returncode == 0 else r.stderr[-600:]))
            if r.returncode != 0:
                continue
            ra, rb = gguf.GGUFReader(a), gguf.GGUFReader(b)
            check(list(ra.fields) == list(rb.fields), f"{ftype}: same metadata keys in the same order")
            same_kv = all(np.array_equal(ra.fields[key].parts[-1], rb.fields[key].parts[-1]) for key in ra.fields
                          if not key.startswith("GGUF."))
            check(same_kv, f"{ftype}: same metadata values")
            ta, tb = ra.tensors, rb.tensors
            check([t.name for t in ta] == [t.name for t in tb], f"{ftype}: same tensor order")
            check(all(x.tensor_type == y.tensor_type and list(x.shape) == list(y.shape) for x, y in zip(ta, tb)),
                  f"{ftype}: same tensor types and shapes")
            worst, n_lin, n_diff = 0.0, 0, 0
            for x, y in zip(ta, tb):
                parts = x.name.split(".")
                kind = parts[2] if x.name.startswith("blk.") else None
                if kind not in linears:
                    check(np.array_equal(x.data, y.data), f"{ftype}: '{x.name}' equals the plain path's bytes")
                    continue
                n_lin += 1
                n_diff += not np.array_equal(x.data, y.data)
                w = hf[f"model.layers.{parts[1]}.{linears[kind]}.weight"]
                if kind == "attn_q":
                    w = permute(w, cfg["num_attention_heads"])
                if kind == "attn_k":
                    w = permute(w, cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
                d = gguf.quants.dequantize(y.data, y.tensor_type).reshape(w.shape)
                worst = max(worst, float(np.linalg.norm(d - w) / np.linalg.norm(w)))
            check(n_diff == n_lin and n_lin == 7 * cfg["num_hidden_layers"],
                  f"{ftype}: all {n_lin} linears are GPTQ's ({n_diff} differ from the plain path)")
            check(worst < 0.2, f"{ftype}: linears decode close to the HF weights (worst rel err {worst:.3f})")


def main():
    tool = os.path.join(TOOLS, "gptq_gguf_tool") if TOOLS else None
    if not tool or not os.path.exists(tool):
        print("skip: gptq_gguf_tool not built (LOWBIT_TOOLS_DIR)")
        return 77
    layer_checks(tool)
    if BIN and os.path.exists(BIN) and os.path.isdir(MODEL):
        cli_checks()
    else:
        print("no lowbit binary or models/lowbit-ref-30m: CLI checks skipped")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
