# SPDX-License-Identifier: MIT
"""Oracle: quantized Hugging Face directories written here in numpy, run by lowbit, against float64 numpy.

A tiny llama from tests/fixtures/make_tiny_llama.py (f32) gets one large embedding column (after RMSNorm it is
an activation outlier >= 6 in every Linear input of the first block). Its Linear weights are then written as
  * bitsandbytes LLM.int8: weight int8 [N, K] (row absmax, round half even), SCB f32 [N], weight_format u8;
    reference: LLM.int8's outlier decomposition in float64 (outlier columns |x| >= 6 in float, the rest row-wise
    int8 with int32-exact products); it must also be far from int8 activations without the decomposition;
  * lowbit_rtn int_group_v1 (4-bit, groups of 32, asymmetric): qweight = little-endian bit stream of codes in
    u32 words, scales f16, zeros u8; reference: float64 forward over (q - zero) * scale.
lowbit's logits come from tools/forward_logits (runtime::Session::open, as `lowbit run` uses).
Needs LOWBIT_TOOLS_DIR (set by ctest).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_llama  # noqa: E402

try:
    from safetensors.numpy import save_file
except ImportError:
    print("safetensors is needed; skipping")
    sys.exit(77)

SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.environ.get("LOWBIT_TOOLS_DIR", "")
THRESHOLD = 6.0
TOKENS = [(i * 37 + 11) % 500 for i in range(40)]


def rel_err(got, ref):
    return float(np.max(np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)))


def forward_logits(model_dir, out):
    r = subprocess.run([os.path.join(TOOLS, "forward_logits"), model_dir, out, "--tokens", ",".join(map(str, TOKENS)),
                        "--threads", "2"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"forward_logits {model_dir} failed: {r.stderr}")
    return np.fromfile(out, dtype=np.float32).reshape(len(TOKENS), -1).astype(np.float64)


def is_linear(name):
    return name.endswith("_proj.weight")


def int8_quantize(w):
    w = w.astype(np.float32)
    absmax = np.abs(w).max(axis=1).astype(np.float32)
    q = np.rint(w * (np.float32(127.0) / absmax)[:, None]).astype(np.int8)
    return q, absmax


def int8_decomp(x, q, scb, threshold):
    """LLM.int8 matmul in float64: outlier columns in float, the rest row-wise int8."""
    outlier = (np.abs(x) >= threshold).any(axis=0) if threshold > 0 else np.zeros(x.shape[1], bool)
    xz = np.where(outlier[None, :], 0.0, x)
    amax = np.abs(xz).max(axis=1)
    safe = np.where(amax > 0, amax, 1.0)
    xq = np.where(amax[:, None] > 0, np.rint(xz * (127.0 / safe)[:, None]), 0.0)
    y = (xq @ q.astype(np.float64).T) * (amax[:, None] * scb.astype(np.float64)[None, :]) / (127.0 * 127.0)
    wf = q.astype(np.float64) * scb.astype(np.float64)[:, None] / 127.0
    return y + x[:, outlier] @ wf[:, outlier].T, int(outlier.sum())


def rtn_records(w, bits=4, g=32):
    n, k = w.shape
    wg = w.astype(np.float64).reshape(n, k // g, g)
    lo, hi = np.minimum(wg.min(axis=2), 0), np.maximum(wg.max(axis=2), 0)
    scale = ((hi - lo) / (2 ** bits - 1)).astype(np.float16)
    s64 = scale.astype(np.float64)
    zero = np.clip(np.rint(-lo / s64), 0, 2 ** bits - 1).astype(np.uint8)
    q = np.clip(np.rint(wg / s64[:, :, None]) + zero[:, :, None], 0, 2 ** bits - 1).astype(np.uint64).reshape(n, k)
    words = (k * bits + 31) // 32
    packed = np.zeros((n, words), np.uint64)
    for j in range(k):
        bit = j * bits
        packed[:, bit // 32] |= (q[:, j] << np.uint64(bit % 32)) & np.uint64(0xFFFFFFFF)
        if bit % 32 + bits > 32:
            packed[:, bit // 32 + 1] |= q[:, j] >> np.uint64(32 - bit % 32)
    deq = ((q.reshape(n, k // g, g).astype(np.float64) - zero[:, :, None]) * s64[:, :, None]).reshape(n, k)
    recs = {"qweight": packed.astype(np.uint32).view(np.int32), "scales": scale, "zeros": zero}
    return recs, deq


def write_dir(src, dst, tensors, qc):
    os.makedirs(dst)
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), dst)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    if qc is not None:
        cfg["quantization_config"] = qc
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, os.path.join(dst, "model.safetensors"))


def main():
    if not TOOLS or not os.path.exists(os.path.join(TOOLS, "forward_logits")):
        print("FAIL: LOWBIT_TOOLS_DIR/forward_logits not found")
        return 1
    tmp = tempfile.mkdtemp(prefix="lowbit_run_quantized_oracle_")
    try:
        base = os.path.join(tmp, "f32")
        subprocess.run([sys.executable, os.path.join(SRC, "tests/fixtures/make_tiny_llama.py"), "--out", base,
                        "--seed", "9"], check=True, capture_output=True)
        cfg, t64 = reference_llama.load(base)
        f32 = {k: v.astype(np.float32) for k, v in t64.items()}
        f32["model.embed_tokens.weight"][:, 5] = 60.0
        failures = []

        # LLM.int8.
        tensors, int8 = dict(f32), {}
        for name in [n for n in f32 if is_linear(n)]:
            q, scb = int8_quantize(f32[name])
            p = name[: -len(".weight")]
            tensors[name], tensors[p + ".SCB"] = q, scb
            tensors[p + ".weight_format"] = np.zeros((), np.uint8)
            int8[p] = (q, scb)
        qc = {"quant_method": "bitsandbytes", "load_in_8bit": True, "llm_int8_threshold": THRESHOLD}
        write_dir(base, os.path.join(tmp, "int8"), tensors, qc)
        got = forward_logits(os.path.join(tmp, "int8"), os.path.join(tmp, "int8.f32"))
        model = (cfg, {k: v.astype(np.float64) for k, v in f32.items()})
        orig_linear = reference_llama._linear
        n_outliers = []

        def make_linear(threshold):
            def linear(x, t, name):
                y, n_out = int8_decomp(x, *int8[name], threshold)
                n_outliers.append(n_out)
                return y
            return linear

        try:
            reference_llama._linear = make_linear(THRESHOLD)
            want = reference_llama.forward(model, TOKENS)
            reference_llama._linear = make_linear(0.0)
            plain = reference_llama.forward(model, TOKENS)
        finally:
            reference_llama._linear = orig_linear
        e_decomp, e_plain = rel_err(got, want), rel_err(got, plain)
        print(f"int8: rel err vs decomposition {e_decomp:.3e}, vs int8 without it {e_plain:.3e}, "
              f"outlier columns per linear (first 7) {n_outliers[:7]}")
        if not e_decomp < 1e-3:
            failures.append(f"int8 logits differ from the float64 decomposition by {e_decomp:.3e}")
        if not e_plain > 5 * e_decomp:
            failures.append(f"int8 logits are not clearly closer to the decomposition ({e_decomp:.3e}) than to "
                            f"int8 without it ({e_plain:.3e})")
        if max(n_outliers) == 0:
            failures.append("the model has no activation outlier column; the test checks nothing")

        # lowbit_rtn.
        tensors, deq = dict(f32), dict(model[1])
        for name in [n for n in f32 if is_linear(n)]:
            recs, d = rtn_records(f32[name])
            del tensors[name]
            p = name[: -len(".weight")]
            for suffix, v in recs.items():
                tensors[p + "." + suffix] = v
            deq[name] = d
        qc = {"quant_method": "lowbit_rtn", "bits": 4, "group_size": 32, "sym": False, "layout": "int_group_v1"}
        write_dir(base, os.path.join(tmp, "rtn"), tensors, qc)
        got = forward_logits(os.path.join(tmp, "rtn"), os.path.join(tmp, "rtn.f32"))
        want = reference_llama.forward((cfg, deq), TOKENS)
        e = rel_err(got, want)
        e_f32 = rel_err(got, reference_llama.forward(model, TOKENS))
        print(f"rtn: rel err vs dequantized float64 {e:.3e} (vs unquantized {e_f32:.3e})")
        if not e < 1e-4:
            failures.append(f"rtn logits differ from the dequantized float64 model by {e:.3e}")
        if not e_f32 > 10 * e:
            failures.append("rtn logits equal the unquantized model's: the weights were not quantized")

        for f in failures:
            print("FAIL:", f)
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
