# SPDX-License-Identifier: MIT
"""Oracle: lowbit's CPU forward pass against an independent float64 numpy implementation (reference_llama.py).

For seeded synthetic models from tests/fixtures/make_tiny_llama.py (2-3 layers, GQA; across the configs every
quirk: qwen2 q/k/v biases, tied embeddings, llama3 rope scaling, llama attention_bias, Mistral's class name;
f32 weights) and a prompt of 80 tokens, the logits of `forward_logits` (batched prefill, and token-by-token
decode for one config) must match numpy to ||d|| / ||ref|| < 1e-4 per row (max over rows). Then the same weights
as GGUF: (a) written here with the `gguf` package, Q/K rows (and biases) permuted exactly as llama.cpp's
convert_hf_to_gguf.py does for llama and rope_freqs.weight computed as it does for llama3; (b) written by
`lowbit convert --type f32` when that command exists. Both must give the same logits, which checks the Q/K
permutation and the RoPE convention chosen per architecture and source format.
Needs LOWBIT_TOOLS_DIR (set by ctest); fails, never skips, when the tool is missing.
"""
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_llama  # noqa: E402

import gguf  # noqa: E402

SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.environ.get("LOWBIT_TOOLS_DIR", "")
BIN = os.environ.get("LOWBIT_BIN", "")
TOL = 1e-4
N_PROMPT = 80

CONFIGS = [
    ("llama_gqa", ["--arch", "llama", "--layers", "2", "--heads", "4", "--kv-heads", "2"]),
    ("qwen2_bias_tied", ["--arch", "qwen2", "--layers", "2", "--heads", "4", "--kv-heads", "1", "--tied"]),
    ("llama3_rope_bias", ["--arch", "llama", "--layers", "3", "--heads", "8", "--kv-heads", "2", "--hidden", "64",
                          "--rope-scaling", "llama3", "--bias", "--ctx", "256"]),
    ("mistral_tied", ["--arch", "mistral", "--layers", "2", "--heads", "4", "--kv-heads", "4", "--tied"]),
]


def rel_err(got, ref):
    return float(np.max(np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)))


def run_tool(model, tokens, out, *extra):
    cmd = [os.path.join(TOOLS, "forward_logits"), model, out, "--tokens", ",".join(map(str, tokens)),
           "--threads", "2", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr}")
    return np.fromfile(out, dtype=np.float32).reshape(len(tokens), -1).astype(np.float64)


def permute(w, n_head):
    """convert_hf_to_gguf.py LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(cfg, head_dim):
    """convert_hf_to_gguf.py LlamaModel.generate_extra_tensors (rope_freqs.weight)."""
    rs = cfg["rope_scaling"]
    base = cfg.get("rope_theta", 10000.0)
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor, lo, hi = rs.get("factor", 8.0), rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    low_wl, high_wl = old / lo, old / hi
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (old / wl - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight", "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf):
    if hf in HF_TO_GGUF:
        return HF_TO_GGUF[hf]
    _, _, layer, rest = hf.split(".", 3)
    for k, v in HF_TO_GGUF.items():
        if rest.startswith(k):
            return f"blk.{layer}.{v}{rest[len(k):]}"
    raise KeyError(hf)


def write_gguf(model, path):
    """The model as llama.cpp's converter would write it in f32 (no tokenizer: lowbit does not need one)."""
    cfg, tensors = model
    arch = "qwen2" if cfg["architectures"][0] == "Qwen2ForCausalLM" else "llama"
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg["hidden_size"] // n_head
    w = gguf.GGUFWriter(path, arch)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_file_type(0)
    if (cfg.get("rope_scaling") or {}).get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(cfg, head_dim))
    for name in sorted(tensors):
        a = tensors[name].astype(np.float32)
        if arch == "llama" and (".q_proj." in name or ".k_proj." in name):
            a = permute(a, n_head if ".q_proj." in name else n_kv)
        w.add_tensor(gguf_name(name), np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_bad_inputs(tmp, good_dir, failures):
    """Real files with one tensor dropped / reshaped, and a truncated GGUF: clean exit with a message naming it."""
    from safetensors.numpy import save_file
    cfg, tensors = reference_llama.load(good_dir)
    cases = []
    missing = {k: v.astype(np.float32) for k, v in tensors.items() if k != "model.layers.1.mlp.up_proj.weight"}
    cases.append(("missing", missing, "'model.layers.1.mlp.up_proj.weight'", "missing"))
    reshaped = {k: v.astype(np.float32) for k, v in tensors.items()}
    reshaped["model.layers.0.self_attn.k_proj.weight"] = np.zeros((16, 64), dtype=np.float32)
    cases.append(("shape", reshaped, "'model.layers.0.self_attn.k_proj.weight' has shape [16, 64], expected [32, 64]",
                  ""))
    for label, tensors_out, needle, needle2 in cases:
        d = os.path.join(tmp, "bad_" + label)
        os.makedirs(d)
        for fn in ("config.json", "generation_config.json"):
            with open(os.path.join(good_dir, fn)) as src, open(os.path.join(d, fn), "w") as dst:
                dst.write(src.read())
        save_file(tensors_out, os.path.join(d, "model.safetensors"))
        r = subprocess.run([os.path.join(TOOLS, "forward_logits"), d, os.path.join(tmp, "bad.f32"), "--tokens", "1"],
                           capture_output=True, text=True)
        ok = r.returncode == 1 and needle in r.stderr and needle2 in r.stderr
        print(f"bad input {label:10s} exit {r.returncode}: {r.stderr.strip()} {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append("bad input " + label)
    g = os.path.join(tmp, "llama_gqa.gguf")
    with open(g, "rb") as f:
        data = f.read()
    cut = os.path.join(tmp, "truncated.gguf")
    with open(cut, "wb") as f:
        f.write(data[: len(data) - 1000])
    r = subprocess.run([os.path.join(TOOLS, "forward_logits"), cut, os.path.join(tmp, "bad.f32"), "--tokens", "1"],
                       capture_output=True, text=True)
    ok = r.returncode == 1 and "truncated" in r.stderr
    print(f"bad input truncated exit {r.returncode}: {r.stderr.strip()} {'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append("bad input truncated gguf")


def has_convert():
    if not BIN or not os.path.exists(BIN):
        return False
    return subprocess.run([BIN, "convert", "--help"], capture_output=True).returncode == 0


def main():
    tool = os.path.join(TOOLS, "forward_logits")
    if not os.path.exists(tool):
        print(f"FAIL: {tool} is missing (build the tools first)")
        return 1
    convert = has_convert()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for ci, (label, args) in enumerate(CONFIGS):
            d = os.path.join(tmp, label)
            subprocess.run([sys.executable, os.path.join(SRC, "tests/fixtures/make_tiny_llama.py"), "--out", d,
                            "--seed", str(100 + ci), "--dtype", "f32", *args], check=True)
            model = reference_llama.load(d)
            vocab = model[0]["vocab_size"]
            tokens = [int(t) for t in np.random.default_rng(ci).integers(0, vocab, N_PROMPT)]
            ref = reference_llama.forward(model, tokens)
            results = {"hf": run_tool(d, tokens, os.path.join(tmp, "hf.f32"))}
            if ci == 0:
                results["hf_decode"] = run_tool(d, tokens, os.path.join(tmp, "dec.f32"), "--decode")
                results["hf_chunks7"] = run_tool(d, tokens, os.path.join(tmp, "ch.f32"), "--n-batch", "7")
                results["hf_ref_backend"] = run_tool(d, tokens, os.path.join(tmp, "ref.f32"), "--backend", "ref")
            g = os.path.join(tmp, label + ".gguf")
            write_gguf(model, g)
            results["gguf_py"] = run_tool(g, tokens, os.path.join(tmp, "g.f32"))
            if convert:
                g2 = os.path.join(tmp, label + "_lowbit.gguf")
                r = subprocess.run([BIN, "convert", d, "-o", g2, "--type", "f32", "--no-progress"],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    results["gguf_lowbit_convert"] = run_tool(g2, tokens, os.path.join(tmp, "g2.f32"))
                else:
                    print(f"{label:18s} lowbit convert failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
                    failures.append(f"{label}/lowbit convert")
            for how, got in results.items():
                err = rel_err(got, ref)
                status = "ok" if err < TOL else "FAIL"
                print(f"{label:18s} {how:20s} max rel err {err:.2e} {status}")
                if err >= TOL:
                    failures.append(f"{label}/{how}")
        check_bad_inputs(tmp, os.path.join(tmp, CONFIGS[0][0]), failures)
    if not convert:
        print("note: `lowbit convert` unavailable; GGUF checked with the gguf-package writer only")
    if failures:
        print("FAILED:", ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
