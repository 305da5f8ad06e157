# SPDX-License-Identifier: MIT
"""Oracle for the bitsandbytes schemes (NF4/FP4 + double quant, LLM.int8 rows) and RTN integer groups.

A numpy re-implementation written from bitsandbytes 0.50.2 (functional.py quantize_4bit / create_dynamic_map /
QuantState.as_dict, backends/default/ops.py quantize_4bit / quantize_blockwise / int8_vectorwise_quant) and
GPTQ's min/max quantizer, compared with what tests/tools/bnb_quantize writes. numpy only (no torch in CI).
A one-off check against the real bitsandbytes 0.50.2 + torch 2.15 on CPU matched codes, absmax, quant maps and
JSON bit for bit (see the helper's report).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

NF4 = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                0.7229568362236023, 1.0], dtype=np.float32)
# get_4bit_type("fp4"): the "-0" is the Python int -0, i.e. +0.0
FP4 = (np.array([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, 0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0],
                dtype=np.float32) / np.float32(12.0)).astype(np.float32)


def dynamic_map():
    """create_dynamic_map(signed=True) by its formula (torch.linspace's scalar path, f32)."""
    data = []
    for i in range(7):
        n = 2 ** i + 1
        step = (np.float32(1.0) - np.float32(0.1)) / np.float32(n - 1)
        b = np.array([np.float32(0.1) + step * np.float32(j) if j < n // 2 else np.float32(1.0) - step * np.float32(n - 1 - j)
                      for j in range(n)], dtype=np.float32)
        means = (b[:-1] + b[1:]) / np.float32(2.0)
        s = np.float32(10.0 ** (-6 + i))
        data += list(s * means) + list(-s * means)
    data += [0.0, 1.0]
    return np.sort(np.array(data, dtype=np.float32))


def bucketize_quant(a, code, blocksize, sort=False):
    """backends/default/ops.py quantize_4bit / quantize_blockwise: absmax, midpoints, torch.bucketize."""
    a = a.reshape(-1).astype(np.float32)
    n = a.size
    full = n - n % blocksize
    order = np.argsort(code, kind="stable") if sort else np.arange(code.size)
    sc = code[order]
    bounds = ((sc[:-1] + sc[1:]) / np.float32(2)).astype(np.float32)
    com = a[:full].reshape(-1, blocksize)
    absmax = np.abs(com).max(axis=1) if full else np.zeros(0, np.float32)
    inv = (np.float32(1.0) / np.maximum(absmax, np.float32(1e-38))).astype(np.float32)
    scaled = np.clip(com * inv[:, None], -1, 1).reshape(-1)
    if n % blocksize:
        am = np.maximum(np.abs(a[full:]).max(), np.float32(1e-38))
        absmax = np.concatenate([absmax, [am]]).astype(np.float32)
        scaled = np.concatenate([scaled, np.clip(a[full:] / am, -1, 1)])
    return scaled.astype(np.float32), bounds, order, absmax.astype(np.float32)


def quantize_4bit(w, code, blocksize):
    scaled, bounds, order, absmax = bucketize_quant(w, code, blocksize, sort=True)
    if scaled.size % 2:
        scaled = np.concatenate([scaled, np.zeros(1, np.float32)])
    q = order[np.searchsorted(bounds, scaled, side="left")].astype(np.uint8)
    return ((q[::2] << 4) | q[1::2]).astype(np.uint8), absmax


def run_tool(tools, algo, w, params):
    with tempfile.TemporaryDirectory(prefix="bnb_oracle_") as d:  # removed afterwards
        w.astype(np.float32).tofile(os.path.join(d, "in.f32"))
        subprocess.run([os.path.join(tools, "bnb_quantize"), algo, os.path.join(d, "in.f32"), str(w.shape[0]),
                        str(w.shape[1]), d] + [f"{k}={v}" for k, v in params.items()], check=True)
        recs = {}
        for line in open(os.path.join(d, "records.txt")):
            parts = line.split()
            recs[parts[0]] = np.fromfile(os.path.join(d, parts[0] + ".bin"), dtype=np.uint8)
        return recs


def check(cond, msg, failures):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def main():
    tools = os.environ.get("LOWBIT_TOOLS_DIR")
    if not tools or not os.path.exists(os.path.join(tools, "bnb_quantize")):
        print("skip: LOWBIT_TOOLS_DIR/bnb_quantize not built")
        return 77
    rng = np.random.default_rng(0)
    failures = []
    dyn = dynamic_map()
    n_cases = 0
    for qt, code in (("nf4", NF4), ("fp4", FP4)):
        for bs in (32, 64, 256, 4096):
            for shape in ((96, 320), (33, 65), (300, 1024)):
                w = (rng.standard_t(3, size=shape) * 0.02).astype(np.float32)
                w[3, :] = 0
                tag = f"{qt} block {bs} shape {shape}"
                plain = run_tool(tools, qt, w, {"block_size": bs, "double_quant": 0})
                packed, absmax = quantize_4bit(w, code, bs)
                check(np.array_equal(plain["weight"], packed), tag + ": packed codes differ", failures)
                check(np.array_equal(plain["weight.absmax"].view(np.float32), absmax), tag + ": absmax differs", failures)
                check(np.array_equal(plain["weight.quant_map"].view(np.float32), code), tag + ": quant_map differs", failures)
                dq = run_tool(tools, qt, w, {"block_size": bs, "double_quant": 1})
                check(np.array_equal(dq["weight"], packed), tag + ": packed codes differ (double quant)", failures)
                state = json.loads(bytes(dq["weight.quant_state.bitsandbytes__" + qt]).decode())
                check(state["quant_type"] == qt and state["blocksize"] == bs and state["shape"] == list(shape) and
                      state["nested_blocksize"] == 256 and state["nested_dtype"] == "float32", tag + ": json", failures)
                offset = np.float32(state["nested_offset"])
                ref_off = np.float32(np.mean(absmax.astype(np.float64)))
                check(abs(int(offset.view(np.int32)) - int(ref_off.view(np.int32))) <= 1, tag + ": offset", failures)
                nmap = dq["weight.nested_quant_map"].view(np.float32)
                ulps = np.abs(nmap.view(np.int32).astype(np.int64) - dyn.view(np.int32).astype(np.int64))
                # torch.linspace's vectorized path differs from its formula by up to 2 ulps on some entries
                check(ulps.max() <= 2, tag + ": nested_quant_map is not create_dynamic_map (within 2 ulps)", failures)
                scaled, bounds, _, nabs = bucketize_quant(absmax - offset, nmap, 256)
                aq = np.searchsorted(bounds, scaled, side="left").astype(np.uint8)
                check(np.array_equal(dq["weight.absmax"], aq), tag + ": double-quant absmax codes differ", failures)
                check(np.array_equal(dq["weight.nested_absmax"].view(np.float32), nabs), tag + ": nested_absmax", failures)
                # dequantization: code[q] * (code2[aq] * nested_absmax + offset)
                qa = nmap[aq] * nabs[np.arange(aq.size) // 256] + offset
                q = np.stack([packed >> 4, packed & 15], axis=1).reshape(-1)[: w.size]
                deq = code[q] * np.repeat(qa, bs)[: w.size]
                err = np.sqrt(np.mean((deq - w.reshape(-1)) ** 2)) / w.std()
                check(err < (0.3 if bs <= 256 else 0.6), tag + f": dequantized error {err}", failures)  # Student-t(3) data
                n_cases += 1
    # LLM.int8 rows: round(w * (127 / absmax)) half to even, SCB = absmax
    w = (rng.standard_normal((64, 256)) * 0.05).astype(np.float32)
    w[5] = 0
    r = run_tool(tools, "int8", w, {})
    amax = np.abs(w).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(amax[:, None] > 0, np.rint(w * (np.float32(127.0) / amax)[:, None]), 0).astype(np.int8)
    check(np.array_equal(r["weight"].view(np.int8).reshape(64, 256), q), "int8 codes differ", failures)
    check(np.array_equal(r["SCB"].view(np.float32), amax), "int8 SCB differs", failures)
    # RTN integer groups (GPTQ min/max rule, f16 scale, codes as a little-endian bit stream per row)
    for bits, g, sym in ((4, 128, 0), (3, 64, 0), (2, 32, 1), (8, -1, 1)):
        w = rng.standard_normal((16, 256)).astype(np.float32)
        r = run_tool(tools, "rtn", w, {"bits": bits, "group_size": g, "symmetric": sym})
        gs = 256 if g == -1 else g
        maxq = 2 ** bits - 1
        grp = w.reshape(16, -1, gs)
        lo = np.minimum(grp.min(axis=2), 0)
        hi = np.maximum(grp.max(axis=2), 0)
        if sym:
            a = np.maximum(-lo, hi)
            lo, hi = -a, a
        scale = ((hi - lo) / np.float32(maxq)).astype(np.float16).astype(np.float32)
        zero = np.full_like(scale, 2 ** (bits - 1)) if sym else np.clip(np.rint(-lo / scale), 0, maxq)
        q = np.clip(np.rint(grp / scale[:, :, None]) + zero[:, :, None], 0, maxq).astype(np.uint64).reshape(16, 256)
        words = r["qweight"].view(np.uint32).reshape(16, -1)
        bitstream = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")
        got = np.zeros((16, 256), np.uint64)
        for b in range(bits):
            got |= bitstream[:, b::bits][:, :256].astype(np.uint64) << np.uint64(b)
        check(np.array_equal(got, q), f"rtn {bits} bits g{g} sym{sym}: codes differ", failures)
        check(np.array_equal(r["scales"].view(np.float16).astype(np.float32).reshape(16, -1), scale), f"rtn {bits}: scales", failures)
    print(f"{n_cases} NF4/FP4 cases, int8 and rtn checks: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
