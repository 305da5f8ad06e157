#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Oracle for `lowbit quantize` to GGUF from a Hugging Face folder and for `lowbit imatrix`, with the PyPI `gguf`
package and numpy (independent of lowbit's code):
  - models/lowbit-ref-30m -> q4_k_m: every tensor's type follows llama.cpp's Q4_K_M rule, written out here
    (token_embd q4_k, output q6_k, attn_v / ffn_down q6_k on layers use_more_bits(i, n), other weights q4_k, norms
    f32); gguf.quants.dequantize of our bytes is close to the HF weights (Q/K rows permuted as
    convert_hf_to_gguf.py) within the type's error; metadata keys; `lowbit run` generates from the file.
  - `lowbit quantize --method q8_0` from HF equals `lowbit convert --type q8_0` tensor for tensor.
  - `lowbit imatrix`: blk.0.attn_q's in_sum2 equals numpy's sum over the chunks' tokens of
    (rmsnorm(embedding) * attn_norm)^2 (BOS written over each chunk's first token), counts = tokens.
Skips (77) when the model folder or the packages are missing.
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
    from safetensors import deserialize  # noqa: F401  (load_hf_f32 reads with it; skip early when missing)
    from tokenizers import Tokenizer
except ImportError as e:
    print("skip:", e)
    sys.exit(77)

BIN = os.environ.get("LOWBIT_BIN")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(SRC, "models", "lowbit-ref-30m")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run(args, expect=0):
    r = subprocess.run(args, capture_output=True, text=True)
    if expect is not None and r.returncode != expect:
        raise SystemExit(f"{args} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


HF2GGUF = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
           "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
           "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
           "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
           "mlp.down_proj.weight": "ffn_down.weight"}


def gguf_name(n):
    g = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
    if n in g:
        return g[n]
    p = n.split(".")
    return f"blk.{p[2]}." + HF2GGUF[".".join(p[3:])]


def use_more_bits(i, n):  # llama-quant.cpp
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def expected_q4_k_m(name, n_layer):
    T = gguf.GGMLQuantizationType
    if name.endswith("norm.weight"):
        return T.F32
    if name == "output.weight":
        return T.Q6_K
    if name.startswith("blk."):
        i = int(name.split(".")[1])
        if name.endswith("attn_v.weight") or name.endswith("ffn_down.weight"):
            return T.Q6_K if use_more_bits(i, n_layer) else T.Q4_K
    return T.Q4_K


def field(r, key):
    f = r.get_field(key)
    return None if f is None else f.contents()


def check_q4_k_m(out, hf, cfg):
    r = gguf.GGUFReader(out)
    n_layer = cfg["num_hidden_layers"]
    check(field(r, "general.file_type") == 15, "general.file_type")
    check(field(r, "general.quantization_version") == 2, "general.quantization_version")
    check(len(field(r, "tokenizer.ggml.tokens")) == cfg["vocab_size"], "tokenizer tokens")
    by_name = {gguf_name(k): (k, v) for k, v in hf.items()}
    check(len(r.tensors) == len(by_name), f"{len(r.tensors)} tensors, HF has {len(by_name)}")
    bound = {gguf.GGMLQuantizationType.Q4_K: 0.12, gguf.GGMLQuantizationType.Q6_K: 0.035,
             gguf.GGMLQuantizationType.F32: 0.0}
    for t in r.tensors:
        want = expected_q4_k_m(t.name, n_layer)
        check(t.tensor_type == want, f"{t.name}: {t.tensor_type.name}, rule says {want.name}")
        hf_name, w = by_name[t.name]
        if t.name.endswith("attn_q.weight"):
            w = permute(w, cfg["num_attention_heads"])
        elif t.name.endswith("attn_k.weight"):
            w = permute(w, cfg["num_key_value_heads"])
        deq = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(w.shape)
        rel = float(np.sqrt(np.mean((deq - w) ** 2)) / (np.std(w) + 1e-12))
        check(rel <= bound[t.tensor_type], f"{t.name}: relative RMSE {rel:.4f} > {bound[t.tensor_type]}")


def check_imatrix(tmp, hf, cfg):
    text = " ".join(f"Sentence number {i} tells a short story about a cat and a lamp." for i in range(80))
    path = os.path.join(tmp, "calib.txt")
    with open(path, "w") as f:
        f.write(text)
    im = os.path.join(tmp, "im.gguf")
    ctx, chunks = 64, 3
    run([BIN, "imatrix", "-m", MODEL, "-f", path, "-o", im, "-c", str(ctx), "--chunks", str(chunks), "-b", "32",
         "--no-progress"])
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    bos = tok.token_to_id("<|begin_of_text|>")
    ids = [bos] + tok.encode(text, add_special_tokens=False).ids
    emb = hf["model.embed_tokens.weight"]
    norm = hf["model.layers.0.input_layernorm.weight"]
    want = np.zeros(cfg["hidden_size"], np.float64)
    for c in range(chunks):
        chunk = list(ids[c * ctx:(c + 1) * ctx])
        chunk[0] = bos
        x = emb[chunk].astype(np.float64)
        x = x / np.sqrt(np.mean(x * x, axis=1, keepdims=True) + cfg["rms_norm_eps"]) * norm
        want += np.sum(x * x, axis=0)
    r = gguf.GGUFReader(im)
    check(field(r, "general.type") == "imatrix", "imatrix general.type")
    check(field(r, "imatrix.chunk_count") == chunks and field(r, "imatrix.chunk_size") == ctx, "chunk keys")
    t = {x.name: x for x in r.tensors}
    got = np.asarray(t["blk.0.attn_q.weight.in_sum2"].data, np.float64)
    rel = float(np.max(np.abs(got - want) / (np.abs(want) + 1e-6)))
    check(rel < 1e-3, f"imatrix blk.0.attn_q in_sum2: max relative error {rel:.2e}")
    check(float(t["blk.0.attn_q.weight.counts"].data[0]) == ctx * chunks, "imatrix counts")
    check("output.weight.in_sum2" not in t, "output.weight is not collected by default")
    n_entries = sum(1 for n in t if n.endswith(".in_sum2"))
    check(n_entries == 7 * cfg["num_hidden_layers"], f"{n_entries} entries")


def main():
    if not BIN or not os.path.exists(BIN):
        print("LOWBIT_BIN not set or missing")
        return 1
    if not os.path.isdir(MODEL):
        print("skip: no", MODEL)
        return 77
    import json
    cfg = json.load(open(os.path.join(MODEL, "config.json")))
    hf = load_hf_f32(MODEL)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "q4km.gguf")
        run([BIN, "quantize", "-m", MODEL, "-o", out, "--method", "q4_k_m", "--no-progress"])
        check_q4_k_m(out, hf, cfg)
        g = run([BIN, "run", "-m", out, "-p", "The", "-n", "8", "--temp", "0", "-t", "2"])
        check(g.stdout.startswith("The") and len(g.stdout.strip()) > 3, f"run output: {g.stdout!r}")
        q8, cv = os.path.join(tmp, "q8.gguf"), os.path.join(tmp, "cv.gguf")
        run([BIN, "quantize", "-m", MODEL, "-o", q8, "--method", "q8_0", "--no-progress"])
        run([BIN, "convert", MODEL, "-o", cv, "--type", "q8_0", "--no-progress"])
        a = {t.name: t for t in gguf.GGUFReader(q8).tensors}
        for t in gguf.GGUFReader(cv).tensors:
            check(t.name in a and a[t.name].tensor_type == t.tensor_type and
                  np.array_equal(np.asarray(a[t.name].data), np.asarray(t.data)), f"q8_0 quantize != convert: {t.name}")
        check_imatrix(tmp, hf, cfg)
    print("failures:", len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
