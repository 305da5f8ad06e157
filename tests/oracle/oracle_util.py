# SPDX-License-Identifier: MIT
"""Helpers shared by the oracle scripts: safetensors read by hand (numpy has no bf16; no dependency on the
safetensors package), HF tensors read by the PyPI safetensors package (an independent reader), and llama.cpp's
q/k row permutation."""
import os
import json
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I32": np.int32, "I64": np.int64,
           "U8": np.uint8, "I8": np.int8}


def load_raw(path):
    """name -> (array, raw bytes, dtype string); BF16 is widened to f32 exactly."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        if v["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, _DTYPES[v["dtype"]])
        out[k] = (a.reshape(v["shape"]), raw, v["dtype"])
    return out


def load_arrays(path):
    """name -> array (BF16 as f32)."""
    return {k: v[0] for k, v in load_raw(path).items()}


def load_hf_f32(d):
    """Every *.safetensors of an HF directory as float32 (bf16/f16 widened exactly), read by safetensors.deserialize."""
    from safetensors import deserialize
    out = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".safetensors"):
            continue
        with open(os.path.join(d, f), "rb") as fh:
            for name, t in deserialize(fh.read()):
                raw = bytes(t["data"])
                if t["dtype"] in ("bfloat16", "BF16"):
                    a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
                elif t["dtype"] in ("float16", "F16"):
                    a = np.frombuffer(raw, np.float16).astype(np.float32)
                else:
                    a = np.frombuffer(raw, np.float32)
                out[name] = a.reshape(t["shape"])
    return out


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF q/k rows to GGUF (interleaved RoPE) order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
