#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Oracle: lowbit's GPTQ equals a straightforward numpy port of IST-DASLab gptq.py `fasterquant`.

Runs tests/tools/gptq_tool on seeded layers (sym/asym, groups 32/64/-1, act-order with and without static
groups) and compares codes and dequantized weights. Rounding ties and f32 summation order may flip a few
codes, whose error then propagates a little: we require < 0.5 % differing codes and ‖Ŵ−Ŵ_np‖/‖W‖ < 1e-2.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np


def find_params(w, bits, sym):  # gptq.py Quantizer.find_params(perchannel=True)
    maxq = 2**bits - 1
    xmin = np.minimum(w.min(axis=1), 0)
    xmax = np.maximum(w.max(axis=1), 0)
    if sym:
        xmax = np.maximum(np.abs(xmin), xmax)
        xmin = np.where(xmin < 0, -xmax, xmin)
    both0 = (xmin == 0) & (xmax == 0)
    xmin = np.where(both0, -1, xmin)
    xmax = np.where(both0, 1, xmax)
    scale = ((xmax - xmin) / maxq).astype(np.float32)
    zero = np.full_like(scale, (maxq + 1) / 2) if sym else np.round(-xmin / scale).astype(np.float32)
    return scale, zero, maxq


def quant(x, scale, zero, maxq):
    q = np.clip(np.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero), q


def gptq_numpy(W, X, bits, gs, sym, actorder, static_groups, blocksize=128, percdamp=0.01):
    W = W.astype(np.float32).copy()
    n, k = W.shape
    H = 2.0 / X.shape[0] * (X.astype(np.float64).T @ X.astype(np.float64))
    params = find_params(W, bits, sym) if gs == -1 else None
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    groups = []
    if static_groups:
        for i in range(0, k, gs):
            groups.append(find_params(W[:, i:i + gs], bits, sym))
    perm = np.arange(k)
    if actorder:
        perm = np.argsort(-np.diag(H), kind="stable")
        W = W[:, perm]
        H = H[perm][:, perm]
    H[np.arange(k), np.arange(k)] += percdamp * np.mean(np.diag(H))
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T.astype(np.float32)  # upper U with H^-1 = U^T U
    Q = np.zeros_like(W)
    codes = np.zeros(W.shape, dtype=np.int32)
    for i1 in range(0, k, blocksize):
        i2 = min(i1 + blocksize, k)
        W1 = W[:, i1:i2].copy()
        Err1 = np.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            w = W1[:, i]
            d = Hinv1[i, i]
            if gs != -1:
                if not static_groups:
                    if (i1 + i) % gs == 0:
                        params = find_params(W[:, i1 + i:i1 + i + gs], bits, sym)
                else:
                    params = groups[perm[i1 + i] // gs]
            q, c = quant(w, params[0], params[1], params[2])
            Q[:, i1 + i] = q
            codes[:, i1 + i] = c
            err1 = (w - q) / d
            W1[:, i:] -= np.outer(err1, Hinv1[i, i:])
            Err1[:, i] = err1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    inv = np.argsort(perm)
    return Q[:, inv], codes[:, inv]


def main():
    tools = os.environ.get("LOWBIT_TOOLS_DIR")
    tool = os.path.join(tools, "gptq_tool") if tools else None
    if not tool or not os.path.exists(tool):
        print("gptq_tool not built (LOWBIT_TOOLS_DIR)")
        return 1
    rng = np.random.default_rng(1234)
    cases = [(4, 32, False, False, False), (4, 64, True, False, False), (3, 32, False, True, False),
             (4, 32, False, True, True), (2, -1, False, False, False), (8, 128, True, True, False)]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for bits, gs, sym, act, static in cases:
            n, k, t = 40, 256, 600
            W = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
            base = rng.standard_normal((t, 1))
            X = ((0.5 * base + rng.standard_normal((t, k))) * np.where(np.arange(k) % 13 == 0, 6.0, 1.0))
            X = X.astype(np.float32)
            W.tofile(f"{tmp}/w.f32")
            X.tofile(f"{tmp}/x.f32")
            subprocess.run([tool, f"{tmp}/w.f32", str(n), str(k), f"{tmp}/x.f32", str(t), str(bits), str(gs),
                            str(int(sym)), str(int(act)), str(int(static)), f"{tmp}/out"], check=True,
                           stdout=subprocess.DEVNULL)
            deq = np.fromfile(f"{tmp}/out.deq.f32", dtype=np.float32).reshape(n, k)
            codes = np.fromfile(f"{tmp}/out.codes.i32", dtype=np.int32).reshape(n, k)
            Qn, Cn = gptq_numpy(W, X, bits, gs, sym, act, static)
            diff_codes = float(np.mean(codes != Cn))
            rel = float(np.linalg.norm(deq - Qn) / np.linalg.norm(W))
            ok = diff_codes < 5e-3 and rel < 1e-2
            failures += not ok
            print(f"bits={bits} group={gs} sym={sym} act_order={act} static={static}: "
                  f"codes differing {diff_codes * 100:.3f}%  rel diff {rel:.2e}  {'ok' if ok else 'FAIL'}")
    print(f"{len(cases) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
