# SPDX-License-Identifier: MIT
"""Oracle: `lowbit convert` output read back by the `gguf` package (gguf-py, llama.cpp's own reader/writer lib).

For synthetic HF folders from tests/fixtures/make_tiny_llama.py (llama/mistral/qwen2, tied, biases, llama3 rope
scaling, sharded, f32/f16/bf16 sources, with a byte-level BPE tokenizer) converted to f32, f16, bf16 and q8_0:
  - every key llama.cpp needs is present with the config's value and gguf-py's expected type;
  - the tensor name set is exactly the expected one; shapes match HF (row-major);
  - values: Q/K rows permuted as llama.cpp's convert_hf_to_gguf.py `permute` (llama only, not qwen2),
    1-D tensors/norms f32, 2-D tensors cast with numpy (f16, bf16 round-to-nearest-even) or, for q8_0,
    dequantized by gguf.quants within half a quantization step;
  - rope_freqs.weight equals llama.cpp's LlamaModel.generate_extra_tensors formula;
  - tokenizer.ggml.* equal the `tokenizers` library's view of tokenizer.json (tokens by id, merges, pre
    "llama-bpe", bos/eos);
  - `lowbit inspect --json` counts the parameters exactly and reports the bits per weight of the stored types;
  - a GPTNeoXForCausalLM config is refused with exit code 4 and the documented message.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import load_hf_f32, permute  # noqa: E402


try:
    import gguf
    from gguf import GGUFReader
    from safetensors import deserialize  # noqa: F401  (load_hf_f32 reads with it; skip early when missing)
except ImportError as e:  # pragma: no cover
    print("skip:", e)
    sys.exit(77)

SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("LOWBIT_BIN", "")
MAKE = os.path.join(SRC, "tests", "fixtures", "make_tiny_llama.py")

CASES = [
    # (name, generator args, convert types)
    ("llama_tok", ["--arch", "llama", "--tokenizer"], ["f32", "f16", "bf16", "q8_0"]),
    ("llama_tied_bias_rope_sharded", ["--arch", "llama", "--tied", "--bias", "--rope-scaling", "llama3",
                                      "--shard-bytes", "30000", "--dtype", "f16", "--heads", "8"], ["f32", "q8_0"]),
    ("qwen2_bf16", ["--arch", "qwen2", "--dtype", "bf16", "--kv-heads", "1", "--tokenizer"], ["f32", "bf16"]),
    ("mistral", ["--arch", "mistral", "--kv-heads", "4", "--vocab", "320"], ["f16"]),
]

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


def bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def rope_factors(cfg):  # llama.cpp LlamaModel.generate_extra_tensors
    rs = cfg["rope_scaling"]
    base = cfg.get("rope_theta", 10000.0)
    dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (np.float32(base) ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)))
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    lw, hw = old / lo, old / hi
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < hw:
            out.append(1)
        elif wl > lw:
            out.append(factor)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


HF2GGUF = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
           "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
           "self_attn.o_proj.weight": "attn_output.weight", "self_attn.q_proj.bias": "attn_q.bias",
           "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
           "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
           "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight"}


def gguf_name(n):
    g = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
         "lm_head.weight": "output.weight"}
    if n in g:
        return g[n]
    p = n.split(".")
    return f"blk.{p[2]}." + HF2GGUF[".".join(p[3:])]


def field(r, key):
    f = r.get_field(key)
    if f is None:
        return None
    return f.contents()


def check_gguf(case, d, out, typ):
    cfg = json.load(open(os.path.join(d, "config.json")))
    arch = "qwen2" if cfg["architectures"][0] == "Qwen2ForCausalLM" else "llama"
    r = GGUFReader(out)
    tag = f"{case}/{typ}"
    check(field(r, "general.architecture") == arch, f"{tag}: general.architecture")
    ft = {"f32": 0, "f16": 1, "bf16": 32, "q8_0": 7}[typ]
    check(field(r, "general.file_type") == ft, f"{tag}: general.file_type {field(r, 'general.file_type')} != {ft}")
    check(field(r, "general.quantization_version") == 2, f"{tag}: general.quantization_version")
    want = {"context_length": cfg["max_position_embeddings"], "embedding_length": cfg["hidden_size"],
            "block_count": cfg["num_hidden_layers"], "feed_forward_length": cfg["intermediate_size"],
            "attention.head_count": cfg["num_attention_heads"], "attention.head_count_kv": cfg["num_key_value_heads"],
            "rope.dimension_count": cfg["hidden_size"] // cfg["num_attention_heads"], "vocab_size": cfg["vocab_size"]}
    for k, v in want.items():
        check(field(r, f"{arch}.{k}") == v, f"{tag}: {arch}.{k} = {field(r, f'{arch}.{k}')}, want {v}")
    check(abs(field(r, f"{arch}.rope.freq_base") - cfg["rope_theta"]) < 1e-3, f"{tag}: rope.freq_base")
    check(abs(field(r, f"{arch}.attention.layer_norm_rms_epsilon") - cfg["rms_norm_eps"]) < 1e-9, f"{tag}: rms eps")

    hf = load_hf_f32(d)
    tensors = {t.name: t for t in r.tensors}
    expected = {gguf_name(n) for n in hf}
    if cfg.get("rope_scaling"):
        expected.add("rope_freqs.weight")
    check(set(tensors) == expected, f"{tag}: tensor names differ: {sorted(set(tensors) ^ expected)}")
    if cfg["tie_word_embeddings"]:
        check("output.weight" not in tensors, f"{tag}: tied model has output.weight")
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    for n, w in hf.items():
        g = gguf_name(n)
        if g not in tensors:
            continue
        t = tensors[g]
        ref = w
        if arch == "llama" and (".attn_q." in g or ".attn_k." in g):
            ref = permute(w, n_head if ".attn_q." in g else n_kv)
        one_d = w.ndim == 1 or g.endswith("_norm.weight")
        stored = gguf.GGMLQuantizationType.F32 if one_d else {
            "f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
            "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[typ]
        check(t.tensor_type == stored, f"{tag}: {g} type {t.tensor_type.name} != {stored.name}")
        check(list(reversed([int(x) for x in t.shape])) == list(w.shape), f"{tag}: {g} shape {t.shape} vs {w.shape}")
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            got = np.asarray(t.data, dtype=np.float32).reshape(w.shape)
            check(np.array_equal(got, ref.astype(np.float32)), f"{tag}: {g} f32 values differ")
        elif t.tensor_type == gguf.GGMLQuantizationType.F16:
            got = np.asarray(t.data).view(np.float16).reshape(w.shape)
            check(np.array_equal(got.view(np.uint16), ref.astype(np.float16).view(np.uint16)), f"{tag}: {g} f16 differs")
        elif t.tensor_type == gguf.GGMLQuantizationType.BF16:
            got = np.asarray(t.data).view(np.uint16).reshape(w.shape)
            check(np.array_equal(got, bf16_bits(ref)), f"{tag}: {g} bf16 differs")
        else:
            deq = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(w.shape)
            blocks = np.abs(ref.reshape(-1, 32)).max(axis=1) / 127.0
            err = np.abs(deq - ref).reshape(-1, 32).max(axis=1)
            # half a step, plus the f16 rounding of the block scale times 127
            check(np.all(err <= blocks * 0.5 + blocks * 127 * 2 ** -10 + 1e-7), f"{tag}: {g} q8_0 error too large")
    if cfg.get("rope_scaling"):
        got = np.asarray(tensors["rope_freqs.weight"].data, dtype=np.float32)
        check(np.allclose(got, rope_factors(cfg), rtol=1e-6, atol=0), f"{tag}: rope_freqs differ {got} vs {rope_factors(cfg)}")
    if os.path.exists(os.path.join(d, "tokenizer.json")):
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        vocab = tok.get_vocab(with_added_tokens=True)
        by_id = [None] * cfg["vocab_size"]
        for s, i in vocab.items():
            by_id[i] = s
        check(field(r, "tokenizer.ggml.model") == "gpt2", f"{tag}: tokenizer model")
        # The fixture's BPE has Llama 3's Split regex but not Llama 3's "ignore_merges": true, which is llama.cpp's
        # dbrx row (same regex, merges applied to whole words), not llama-bpe: the GGUF must say dbrx so that
        # llama.cpp tokenizes it as HF does.
        want_pre = "llama-bpe" if json.load(open(os.path.join(d, "tokenizer.json")))["model"].get("ignore_merges") else "dbrx"
        check(field(r, "tokenizer.ggml.pre") == want_pre, f"{tag}: tokenizer pre {field(r, 'tokenizer.ggml.pre')}")
        check(field(r, "tokenizer.ggml.tokens") == by_id, f"{tag}: tokens differ")
        tj = json.load(open(os.path.join(d, "tokenizer.json")))
        merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
        check(field(r, "tokenizer.ggml.merges") == merges, f"{tag}: merges differ")
        check(field(r, "tokenizer.ggml.bos_token_id") == tok.token_to_id("<|begin_of_text|>"), f"{tag}: bos")
        check(field(r, "tokenizer.ggml.eos_token_id") == tok.token_to_id("<|end_of_text|>"), f"{tag}: eos")
        check(field(r, "tokenizer.ggml.add_bos_token") is True, f"{tag}: add_bos")
        types = field(r, "tokenizer.ggml.token_type")
        check(types[tok.token_to_id("<|begin_of_text|>")] == 3 and types[300] == 1, f"{tag}: token types")
    # inspect: exact parameter count and bits per weight of the stored types
    js = json.loads(run([BIN, "inspect", out, "--json"]).stdout)
    n_params = sum(int(np.prod(w.shape)) for w in hf.values())
    check(js["n_params"] == n_params, f"{tag}: inspect n_params {js['n_params']} != {n_params}")
    bpw2d = {"f32": 32.0, "f16": 16.0, "bf16": 16.0, "q8_0": 8.5}[typ]
    check(js["bpw_2d"] == bpw2d, f"{tag}: inspect bpw_2d {js['bpw_2d']} != {bpw2d}")
    if typ == "f32":
        check(js["bpw"] == 32.0, f"{tag}: inspect bpw {js['bpw']}")
    jh = json.loads(run([BIN, "inspect", d, "--json"]).stdout)
    check(jh["n_params"] == n_params, f"{tag}: inspect HF n_params {jh['n_params']} != {n_params}")


def main():
    if not BIN or not os.path.exists(BIN):
        print("LOWBIT_BIN not set or missing")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for case, args, types in CASES:
            d = os.path.join(tmp, case)
            run([sys.executable, MAKE, "--out", d, "--seed", "7"] + args)
            for typ in types:
                out = os.path.join(tmp, f"{case}-{typ}.gguf")
                run([BIN, "convert", d, "-o", out, "--type", typ, "--no-progress"])
                check_gguf(case, d, out, typ)
        # unsupported architecture
        d = os.path.join(tmp, "neox")
        run([sys.executable, MAKE, "--out", d])
        cfg = json.load(open(os.path.join(d, "config.json")))
        cfg["architectures"] = ["GPTNeoXForCausalLM"]
        json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
        r = run([BIN, "convert", d, "-o", os.path.join(tmp, "x.gguf")], expect=None)
        check(r.returncode == 4, f"neox exit code {r.returncode}")
        check("lowbit: error: architecture 'GPTNeoXForCausalLM' is not supported (supported: LlamaForCausalLM, "
              "MistralForCausalLM, Qwen2ForCausalLM)" in r.stderr, f"neox message: {r.stderr}")
        check(not os.path.exists(os.path.join(tmp, "x.gguf")), "no output file after a failed convert")
    print("failures:", len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
