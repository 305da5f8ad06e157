# SPDX-License-Identifier: MIT
"""Oracle for HQQ: a numpy re-implementation of hqq/core/quantize.py (Quantizer.quantize), hqq/core/optimize.py
(optimize_weights_proximal_legacy, f32) and hqq/core/bitpack.py, compared with tests/tools/bnb_quantize's "hqq"
row on small matrices. numpy only. (A one-off check against the real hqq package on CPU gave identical W_q bytes
for nbits 1/2/3/4/8, axis 0/1, group 64/128.)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

f32 = np.float32


def shrink(x, beta, p):
    a = np.abs(x)
    with np.errstate(divide="ignore"):
        return (np.sign(x) * np.maximum(a - f32(1.0 / beta) * np.power(a, f32(p - 1)), 0)).astype(f32)


def hqq_quantize(w, nbits, group_size, axis, round_zero, lp=0.7, beta=10.0, kappa=1.01, iters=20):
    W = w.reshape(-1, group_size) if axis == 1 else w.reshape(group_size, -1)
    mn = W.min(axis=axis, keepdims=True)
    mx = W.max(axis=axis, keepdims=True)
    max_v = f32(2 ** nbits - 1)
    with np.errstate(divide="ignore"):
        scale = np.minimum(max_v / (mx - mn), f32(2e4)).astype(f32)
    zero = (-mn * scale).astype(f32)
    if round_zero:
        zero = np.rint(zero).astype(f32)
    best = 1e4
    for _ in range(iters):
        W_q = np.clip(np.rint(W * scale + zero), 0, max_v).astype(f32)
        W_r = ((W_q - zero) / scale).astype(f32)
        W_e = shrink(W - W_r, beta, lp)
        zero = np.mean((W_q - (W - W_e) * scale).astype(np.float64), axis=axis, keepdims=True).astype(f32)
        beta *= kappa
        err = float(np.abs(W - W_r).astype(np.float64).mean())
        if err < best:
            best = err
        else:
            break
    W_q = np.clip(np.rint(W * scale + zero), 0, max_v).astype(np.uint8)
    return W_q, (f32(1.0) / scale).astype(f32), zero


def pack(W_q, nbits):
    if nbits == 8:
        return W_q
    if nbits == 3:
        R = W_q.shape[0]
        P = np.zeros((10 * ((R + 9) // 10), W_q.shape[1]), np.int32)
        P[:R] = W_q
        s = P.shape[0] // 10
        out = np.zeros((s, W_q.shape[1]), np.int32)
        for k in range(10):
            out |= P[k * s:(k + 1) * s] << (27 - 3 * k)
        return out
    parts = 8 // nbits
    s = W_q.shape[0] // parts
    out = np.zeros((s, W_q.shape[1]), np.uint8)
    for k in range(parts):
        out |= (W_q[k * s:(k + 1) * s] << (8 - nbits * (k + 1))).astype(np.uint8)
    return out


def run_tool(tools, w, params):
    with tempfile.TemporaryDirectory(prefix="hqq_oracle_") as d:  # removed afterwards
        w.astype(np.float32).tofile(os.path.join(d, "in.f32"))
        subprocess.run([os.path.join(tools, "bnb_quantize"), "hqq", os.path.join(d, "in.f32"), str(w.shape[0]),
                        str(w.shape[1]), d] + [f"{k}={v}" for k, v in params.items()], check=True)
        recs = {}
        for line in open(os.path.join(d, "records.txt")):
            p = line.split()
            recs[p[0]] = (np.fromfile(os.path.join(d, p[0] + ".bin"), dtype=np.uint8), p[1], [int(x) for x in p[2:]])
        return recs


def main():
    tools = os.environ.get("LOWBIT_TOOLS_DIR")
    if not tools or not os.path.exists(os.path.join(tools, "bnb_quantize")):
        print("skip: LOWBIT_TOOLS_DIR/bnb_quantize not built")
        return 77
    rng = np.random.default_rng(5)
    failures = []
    n = 0
    for nbits in (1, 2, 3, 4, 8):
        for axis in (1, 0):
            for g in (64, 128):
                # group 128 uses unit-scale weights: |W - Wr| then exceeds the shrinkage threshold (lp step active)
                w = (rng.standard_t(4, size=(64, 256)) * (1.0 if g == 128 else 0.02)).astype(np.float32)
                rz = nbits == 4
                recs = run_tool(tools, w, {"bits": nbits, "group_size": g, "axis": axis, "round_zero": int(rz)})
                W_q, scale, zero = hqq_quantize(w, nbits, g, axis, rz)
                tag = f"{nbits} bits axis {axis} group {g}"
                packed = pack(W_q, nbits)
                got = recs["W_q"][0].view(np.int32 if nbits == 3 else np.uint8)
                same = (got == packed.reshape(-1)).mean()
                # f32 reductions (group means) may flip a rare code at a rounding boundary
                if same < 0.999:
                    failures.append(f"{tag}: only {same:.5f} of W_q words equal")
                if recs["W_q"][2] != list(packed.shape):
                    failures.append(f"{tag}: W_q shape {recs['W_q'][2]} != {list(packed.shape)}")
                sc = recs["scale"][0].view(np.float16).astype(np.float32).reshape(-1)
                ze = recs["zero"][0].view(np.float16).astype(np.float32).reshape(-1)
                if not np.array_equal(sc, scale.reshape(-1).astype(np.float16).astype(np.float32)):
                    failures.append(f"{tag}: scale differs")
                zref = zero.reshape(-1).astype(np.float16).astype(np.float32)
                if np.abs(ze - zref).max() > 2e-3 * max(1.0, float(np.abs(zref).max())):
                    failures.append(f"{tag}: zero differs by {np.abs(ze - zref).max()}")
                if bytes(recs["packing"][0]).decode() != {8: "8bit_u8", 4: "4bit_u8", 3: "3bit_32", 2: "2bit_u8", 1: "1bit_u8"}[nbits]:
                    failures.append(f"{tag}: packing name")
                if recs["shape"][0].view(np.int64).tolist() != [64, 256]:
                    failures.append(f"{tag}: shape record")
                n += 1
    for f in failures:
        print("FAIL:", f)
    # kappa = 1 (beta never grows), the behaviour of the hqq 0.2.8 release, on unit-scale weights
    for nbits in (4, 2):
        w = rng.standard_t(4, size=(64, 256)).astype(np.float32)
        recs = run_tool(tools, w, {"bits": nbits, "group_size": 64, "axis": 1, "round_zero": 0, "kappa_milli": 1000})
        W_q, _, zero = hqq_quantize(w, nbits, 64, 1, False, kappa=1.0)
        same = (recs["W_q"][0] == pack(W_q, nbits).reshape(-1)).mean()
        if same < 0.999:
            failures.append(f"kappa 1, {nbits} bits: only {same:.5f} of W_q bytes equal")
        n += 1
    print(f"{n} HQQ cases: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
