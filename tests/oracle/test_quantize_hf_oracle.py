# SPDX-License-Identifier: MIT
"""Oracle for `lowbit quantize --method rtn|int8|nf4|fp4|hqq` (HF-style directories).

A tiny bf16 llama (tests/fixtures/make_tiny_llama.py, hidden 128, ff 256) is quantized with every method; the
output is read with the PyPI `safetensors` package (numpy) and checked against what bitsandbytes / hqq /
transformers write: the exact key set per Linear, dtypes and shapes, config.json quantization_config, and a numpy
re-dequantization of the stored records (NF4/FP4 code tables from bitsandbytes, hqq row-split bit packing, the
int_group bit stream) compared with the original weights: codes must be the nearest grid points (NF4/FP4, int8,
rtn: exactly the rounding rule) and the error within the scheme's bound. A GGUF q8_0 input (lowbit convert) is
quantized too: Q/K rows must come back un-permuted. numpy + safetensors + tokenizers only.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    from safetensors import safe_open
except ImportError:
    print("safetensors not installed")
    sys.exit(77)

BIN = os.environ.get("LOWBIT_BIN")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
if not BIN:
    print("LOWBIT_BIN not set")
    sys.exit(77)

LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj"]
# bitsandbytes functional.py get_4bit_type (ANCHORS.md §3.4)
NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=np.float32)
FP4 = (np.array([0, 0.0625, 8, 12, 4, 6, 2, 3, -0.0, -0.0625, -8, -12, -4, -6, -2, -3]) / 12).astype(np.float32)
HQQ_KEYS = {"W_q", "nbits", "group_size", "shape", "scale", "zero", "axis", "packing", "unpack_view_dtype",
            "view_as_float", "quant_scale", "quant_zero", "compute_dtype", "offload_meta", "encoded_state_dict",
            "stores_quant_config", "channel_wise", "optimize", "round_zero"}
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run(args, expect=0):
    r = subprocess.run([BIN] + args, capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout, r.stderr)
        raise SystemExit(f"lowbit {' '.join(args)} exited {r.returncode}, expected {expect}")
    return r


def bf16_to_f32(a):
    return (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def load_file(path):
    """Every tensor through the safetensors package; numpy has no bfloat16, so BF16 tensors (which the package
    reports by get_slice().get_dtype()) are read from their data offsets as uint16."""
    out = {}
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
        data = fh.read()
    with safe_open(path, framework="np") as f:
        for k in f.keys():
            s = f.get_slice(k)
            if s.get_dtype() == "BF16":
                a, b = header[k]["data_offsets"]
                out[k] = np.frombuffer(data[a:b], dtype=np.uint16).reshape(s.get_shape())
            else:
                out[k] = f.get_tensor(k)
    return out


def load_source(d):
    return load_file(os.path.join(d, "model.safetensors"))


def as_f32(a):
    return a.astype(np.float32) if a.dtype != np.uint16 else bf16_to_f32(a)


def module_keys(tensors, module):
    return {k[len(module) + 1:] for k in tensors if k.startswith(module + ".")}


def rel_rmse(w, r):
    return float(np.sqrt(np.mean((w - r) ** 2)) / np.std(w))


def deq_4bit(t, m, w, table, name):
    """Re-dequantizes a bitsandbytes Linear4bit (double quant) and checks every code is the nearest one."""
    keys = module_keys(t, m)
    qt = "nf4" if table is NF4 else "fp4"
    want = {"weight", "weight.absmax", "weight.quant_map", "weight.nested_absmax", "weight.nested_quant_map",
            f"weight.quant_state.bitsandbytes__{qt}"}
    check(keys == want, f"{name}: keys {sorted(keys)}")
    n = w.size
    packed = t[m + ".weight"]
    check(packed.dtype == np.uint8 and packed.shape == ((n + 1) // 2, 1), f"{name}: weight {packed.dtype} {packed.shape}")
    state = json.loads(bytes(t[f"{m}.weight.quant_state.bitsandbytes__{qt}"]).decode())
    check(state["quant_type"] == qt and state["blocksize"] == 64 and state["dtype"] == "bfloat16" and
          state["shape"] == list(w.shape) and state["nested_blocksize"] == 256 and state["nested_dtype"] == "float32",
          f"{name}: quant_state {state}")
    check(np.array_equal(t[m + ".weight.quant_map"], table), f"{name}: quant_map differs from bitsandbytes'")
    nq = t[m + ".weight.nested_quant_map"]
    check(nq.dtype == np.float32 and nq.shape == (256,) and np.all(np.diff(nq) > 0) and nq[-1] == 1.0,
          f"{name}: nested_quant_map")
    aq = t[m + ".weight.absmax"]
    nb = (n + 63) // 64
    check(aq.dtype == np.uint8 and aq.shape == (nb,), f"{name}: absmax {aq.dtype} {aq.shape}")
    na = t[m + ".weight.nested_absmax"]
    check(na.dtype == np.float32 and na.shape == ((nb + 255) // 256,), f"{name}: nested_absmax {na.shape}")
    absmax = nq[aq] * np.repeat(na, 256)[:nb] + np.float32(state["nested_offset"])
    flat = w.reshape(-1)
    true_absmax = np.abs(flat.reshape(-1, 64)).max(axis=1)
    check(np.max(np.abs(absmax - true_absmax) / true_absmax) < 0.02, f"{name}: double-quantized absmax off")
    codes = np.empty(n, dtype=np.int64)
    codes[0::2] = packed[:, 0] >> 4
    codes[1::2] = packed[:, 0] & 15
    nearest = np.abs((flat / np.repeat(true_absmax, 64))[:, None] - table[None, :])
    best = nearest.min(axis=1)
    chosen = nearest[np.arange(n), codes]
    check(np.all(chosen <= best + 1e-6), f"{name}: {int(np.sum(chosen > best + 1e-6))} codes are not the nearest")
    r = table[codes] * np.repeat(absmax, 64)
    e = rel_rmse(flat, r)
    check(e < (0.10 if qt == "nf4" else 0.135), f"{name}: {qt} rel rmse {e:.4f}")
    return e


def deq_int8(t, m, w, name):
    keys = module_keys(t, m)
    check(keys == {"weight", "SCB", "weight_format"}, f"{name}: keys {sorted(keys)}")
    q, scb, fmt = t[m + ".weight"], t[m + ".SCB"], t[m + ".weight_format"]
    check(q.dtype == np.int8 and q.shape == w.shape, f"{name}: weight {q.dtype} {q.shape}")
    check(scb.dtype == np.float32 and scb.shape == (w.shape[0],), f"{name}: SCB {scb.shape}")
    check(fmt.dtype == np.uint8 and fmt.shape == () and int(fmt) == 0, f"{name}: weight_format {fmt}")
    absmax = np.abs(w).max(axis=1)
    check(np.array_equal(scb, absmax), f"{name}: SCB is not the row absmax")
    want = np.rint(w * (np.float32(127) / absmax)[:, None]).astype(np.int64)
    check(np.abs(want - q.astype(np.int64)).max() <= 1 and np.mean(want == q) > 0.999, f"{name}: int8 codes")
    e = rel_rmse(w, q.astype(np.float32) * scb[:, None] / 127)
    check(e < 0.012, f"{name}: int8 rel rmse {e:.4f}")
    return e


def deq_hqq(t, m, w, name):
    keys = module_keys(t, m)
    check(keys == HQQ_KEYS, f"{name}: keys {sorted(keys ^ HQQ_KEYS)}")
    g = 64
    R, C = w.size // g, g
    wq = t[m + ".W_q"]
    check(wq.dtype == np.uint8 and wq.shape == (R // 2, C), f"{name}: W_q {wq.dtype} {wq.shape}")
    scale, zero = t[m + ".scale"], t[m + ".zero"]
    check(scale.dtype == np.float16 and scale.shape == (R, 1) and zero.shape == (R, 1), f"{name}: scale/zero")
    check(bytes(t[m + ".packing"]) == b"4bit_u8" and int(t[m + ".nbits"]) == 4 and int(t[m + ".group_size"]) == 64
          and int(t[m + ".axis"]) == 1 and list(t[m + ".shape"]) == list(w.shape), f"{name}: hqq meta")
    check(t[m + ".nbits"].dtype == np.int32 and t[m + ".shape"].dtype == np.int64, f"{name}: meta dtypes")
    q = np.concatenate([wq >> 4, wq & 15], axis=0).astype(np.float32)  # hqq bitpack: rows split in halves
    r = ((q - zero.astype(np.float32)) * scale.astype(np.float32)).reshape(w.shape)
    err = np.abs(w - r).reshape(R, C)
    check(np.all(err <= 1.5 * scale.astype(np.float32) + 1e-6), f"{name}: hqq error beyond 1.5 scale")
    e = rel_rmse(w, r)
    check(e < 0.095, f"{name}: hqq rel rmse {e:.4f}")
    return e


def deq_rtn(t, m, w, name, bits=4, g=128):
    keys = module_keys(t, m)
    check(keys == {"qweight", "scales", "zeros"}, f"{name}: keys {sorted(keys)}")
    rows, cols = w.shape
    words = (cols * bits + 31) // 32
    qw, s, z = t[m + ".qweight"], t[m + ".scales"], t[m + ".zeros"]
    check(qw.dtype == np.int32 and qw.shape == (rows, words), f"{name}: qweight {qw.dtype} {qw.shape}")
    check(s.dtype == np.float16 and s.shape == (rows, cols // g) and z.dtype == np.uint8 and z.shape == s.shape,
          f"{name}: scales/zeros")
    bitsarr = np.unpackbits(qw.view(np.uint8).reshape(rows, -1), axis=1, bitorder="little")[:, :cols * bits]
    q = (bitsarr.reshape(rows, cols, bits) * (1 << np.arange(bits))).sum(axis=2)
    sf = np.repeat(s.astype(np.float32), g, axis=1)
    zf = np.repeat(z.astype(np.float32), g, axis=1)
    want = np.clip(np.rint(w / sf) + zf, 0, 2 ** bits - 1)
    check(np.array_equal(want, q), f"{name}: {int(np.sum(want != q))} rtn codes differ from round(w/s)+z")
    r = (q - zf) * sf
    check(np.all(np.abs(w - r) <= sf * 1.0 + 1e-6), f"{name}: rtn error beyond one step")
    e = rel_rmse(w, r)
    check(e < 0.11, f"{name}: rtn rel rmse {e:.4f}")
    return e


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny")
        subprocess.run([sys.executable, os.path.join(SRC, "tests/fixtures/make_tiny_llama.py"), "--out", src,
                        "--hidden", "128", "--ff", "256", "--heads", "4", "--kv-heads", "2", "--dtype", "bf16",
                        "--tokenizer", "--seed", "3"], check=True, capture_output=True)
        orig = {k: as_f32(v) for k, v in load_source(src).items()}
        cfg_in = json.load(open(os.path.join(src, "config.json")))
        for method in ["nf4", "fp4", "int8", "hqq", "rtn"]:
            out = os.path.join(tmp, method)
            run(["quantize", "-m", src, "-o", out, "--method", method, "--no-progress"])
            files = set(os.listdir(out))
            want_files = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                          "tokenizer_config.json"}
            check(files == want_files, f"{method}: files {sorted(files)}")
            cfg = json.load(open(os.path.join(out, "config.json")))
            qc = cfg.pop("quantization_config")
            check(cfg == cfg_in, f"{method}: config.json differs from the input beyond quantization_config")
            t = load_file(os.path.join(out, "model.safetensors"))
            with safe_open(os.path.join(out, "model.safetensors"), framework="np") as f:
                meta = f.metadata()
            check(meta == {"format": "pt", "lowbit.method": method}, f"{method}: __metadata__ {meta}")
            errs = []
            for name, w in orig.items():
                mod = name[:-len(".weight")]
                if any(mod.endswith(l) for l in LINEARS) and mod.startswith("model.layers."):
                    label = f"{method} {name}"
                    if method in ("nf4", "fp4"):
                        errs.append(deq_4bit(t, mod, w, NF4 if method == "nf4" else FP4, label))
                    elif method == "int8":
                        errs.append(deq_int8(t, mod, w, label))
                    elif method == "hqq":
                        errs.append(deq_hqq(t, mod, w, label))
                    else:
                        errs.append(deq_rtn(t, mod, w, label))
                else:  # kept: same dtype (bf16) and bit-identical
                    check(name in t and t[name].dtype == np.uint16 and np.array_equal(bf16_to_f32(t[name]), w),
                          f"{method}: kept tensor {name} changed")
            bnb = {"_load_in_4bit", "_load_in_8bit", "bnb_4bit_compute_dtype", "bnb_4bit_quant_storage",
                   "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "llm_int8_enable_fp32_cpu_offload",
                   "llm_int8_has_fp16_weight", "llm_int8_skip_modules", "llm_int8_threshold", "load_in_4bit",
                   "load_in_8bit", "quant_method"}
            if method in ("nf4", "fp4"):
                check(set(qc) == bnb and qc["quant_method"] == "bitsandbytes" and qc["load_in_4bit"] is True and
                      qc["_load_in_4bit"] is True and qc["load_in_8bit"] is False and
                      qc["bnb_4bit_quant_type"] == method and qc["bnb_4bit_use_double_quant"] is True and
                      qc["bnb_4bit_compute_dtype"] == "bfloat16" and qc["bnb_4bit_quant_storage"] == "uint8" and
                      qc["llm_int8_threshold"] == 6.0 and qc["llm_int8_skip_modules"] is None, f"{method}: {qc}")
            elif method == "int8":
                check(set(qc) == bnb and qc["load_in_8bit"] is True and qc["_load_in_8bit"] is True and
                      qc["load_in_4bit"] is False and qc["llm_int8_threshold"] == 6.0 and
                      qc["llm_int8_has_fp16_weight"] is False, f"int8: {qc}")
            elif method == "hqq":
                wp = qc["quant_config"]["weight_quant_params"]
                check(qc["quant_method"] == "hqq" and qc["skip_modules"] == ["lm_head"] and
                      wp == {"nbits": 4, "channel_wise": True, "group_size": 64, "optimize": True,
                             "round_zero": True, "axis": 1, "view_as_float": False} and
                      qc["quant_config"]["scale_quant_params"] is None, f"hqq: {qc}")
            else:
                check(qc == {"quant_method": "lowbit_rtn", "bits": 4, "group_size": 128, "sym": False,
                             "layout": "int_group_v1"}, f"rtn: {qc}")
            print(f"{method}: {len(errs)} linears, rel rmse mean {np.mean(errs):.4f} max {np.max(errs):.4f}")

        # GGUF input (q8_0 blocks, Q/K rows permuted by convert): int8 out must match the HF weights closely.
        gg = os.path.join(tmp, "tiny-q8_0.gguf")
        run(["convert", src, "-o", gg, "--type", "q8_0", "--no-progress"])
        out = os.path.join(tmp, "from_gguf")
        run(["quantize", "-m", gg, "-o", out, "--method", "int8", "--no-progress"])
        t = load_file(os.path.join(out, "model.safetensors"))
        check(set(t) >= {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"}, "gguf: kept names")
        check(t["model.embed_tokens.weight"].dtype == np.uint16, "gguf: q8_0 embeddings not written as bf16")
        for l in range(2):
            for lin in LINEARS:
                m = f"model.layers.{l}.{lin}"
                w = orig[m + ".weight"]
                r = t[m + ".weight"].astype(np.float32) * t[m + ".SCB"][:, None] / 127
                e = rel_rmse(w, r)
                check(e < 0.03, f"gguf {m}: rel rmse {e:.4f} (Q/K un-permutation or q8_0 decode wrong?)")
        cfg = json.load(open(os.path.join(out, "config.json")))
        check(cfg["num_key_value_heads"] == 2 and cfg["hidden_size"] == 128 and
              cfg["quantization_config"]["load_in_8bit"] is True, f"gguf config {cfg}")

        # Bad input: group size not dividing, bits out of range -> exit 2 with a message.
        r = run(["quantize", "-m", src, "-o", os.path.join(tmp, "bad"), "--method", "rtn", "--group-size", "100"], 2)
        check("group" in r.stderr and "lowbit: error:" in r.stderr, f"bad group: {r.stderr}")
        r = run(["quantize", "-m", src, "-o", os.path.join(tmp, "bad"), "--method", "hqq", "--bits", "5"], 2)
        check("--bits 5" in r.stderr, f"bad bits: {r.stderr}")
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
