# SPDX-License-Identifier: MIT
"""An independent numpy (float64) forward pass of Llama / Mistral / Qwen2 from a Hugging Face model directory.

Follows transformers' modeling_llama.py / modeling_qwen2.py: RMSNorm (x * rsqrt(mean(x^2) + eps) * w),
rotate-half RoPE with inv_freq = theta^(-2i/d) (llama3 scaling as in modeling_rope_utils._compute_llama3_parameters,
"linear" as position / factor), causal grouped-query attention, q/k/v (and o) biases when present, SwiGLU MLP,
tied embeddings. Reads safetensors itself (F32/F16/BF16, single file or sharded index) so that it shares no
code with lowbit. Usage as a library: `logits = forward(load(dir), tokens)` -> [n_tokens, vocab] float64.
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oracle_util import load_arrays  # noqa: E402

def _read_safetensors(path):
    return {k: a.astype(np.float64) for k, a in load_arrays(path).items()}


def load(model_dir):
    """Returns (config dict, {name: float64 array})."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for fn in files:
            tensors.update(_read_safetensors(os.path.join(model_dir, fn)))
    else:
        tensors = _read_safetensors(os.path.join(model_dir, "model.safetensors"))
    return cfg, tensors


def inv_freq(cfg):
    n_heads = cfg["num_attention_heads"]
    d = cfg.get("head_dim") or cfg["hidden_size"] // n_heads
    base = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / (base ** (np.arange(0, d, 2, dtype=np.float64) / d))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wl, high_wl = old / lo, old / hi
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > low_wl, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wl) & ~(wavelen > low_wl)
        inv = np.where(medium, smoothed, scaled)
    elif kind == "linear":
        inv = inv / rs["factor"]
    elif kind != "default":
        raise ValueError(f"rope scaling {kind} not in the reference")
    return inv


def _rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def _linear(x, t, name):
    y = x @ t[name + ".weight"].T
    if name + ".bias" in t:
        y = y + t[name + ".bias"]
    return y


def forward(model, tokens):
    cfg, t = model
    n_heads, hidden = cfg["num_attention_heads"], cfg["hidden_size"]
    n_kv = cfg.get("num_key_value_heads") or n_heads
    d = cfg.get("head_dim") or hidden // n_heads
    eps = cfg.get("rms_norm_eps", 1e-6)
    n = len(tokens)
    emb = t["model.embed_tokens.weight"]
    x = emb[np.asarray(tokens)]
    pos = np.arange(n, dtype=np.float64)
    ang = np.outer(pos, inv_freq(cfg))           # [n, d/2]
    ang = np.concatenate([ang, ang], axis=-1)    # [n, d] as in HF (emb = cat(freqs, freqs))
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = _rms_norm(x, t[p + "input_layernorm.weight"], eps)
        q = _linear(h, t, p + "self_attn.q_proj").reshape(n, n_heads, d)
        k = _linear(h, t, p + "self_attn.k_proj").reshape(n, n_kv, d)
        v = _linear(h, t, p + "self_attn.v_proj").reshape(n, n_kv, d)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        rep = n_heads // n_kv
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)  # [n, H, d]
        s = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(d) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", s, v).reshape(n, n_heads * d)
        x = x + _linear(o, t, p + "self_attn.o_proj")
        h = _rms_norm(x, t[p + "post_attention_layernorm.weight"], eps)
        g = _linear(h, t, p + "mlp.gate_proj")
        u = _linear(h, t, p + "mlp.up_proj")
        x = x + _linear(g / (1 + np.exp(-g)) * u, t, p + "mlp.down_proj")
    x = _rms_norm(x, t["model.norm.weight"], eps)
    head = t.get("lm_head.weight", emb) if not cfg.get("tie_word_embeddings") else emb
    return x @ head.T
