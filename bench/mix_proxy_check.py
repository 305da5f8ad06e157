#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How well does mix's sensitivity proxy rank tensors? (issue 14)

For a sample of tensors of the reference model: quantize only that tensor to TYPE (everything else F16,
`lowbit quantize --method f16 --tensor-type NAME=TYPE`), measure KLD against the source model's stored
log-probs, and compare with the proxy `quantize --method mix --mix-report` predicts for the same tensor and type
(importance-weighted squared reconstruction error). Prints a table and Spearman's rank correlation.

usage: bench/mix_proxy_check.py --lowbit build/ci/lowbit --imatrix IMATRIX.gguf (--calib TEXT | --base BASE.kld)
                                [--model models/lowbit-ref-30m] [--type q2_k] [--chunks 10] [--threads 2]
                                [--tensors all|sample] [--work DIR] [--json OUT.json]

Measure on calibration text (--calib $LOWBIT_SHARED/data/corpus/calib.txt: the source model's log-probs on its
first --chunks chunks are stored first), never on the evaluation text, so a mix calibrated with the --json output
(`quantize --method mix --sensitivity`) is judged out of sample. --base takes an existing KLD base file instead.
docs/compare/sensitivity-calib-q2k.json: --calib calib.txt --chunks 8 --tensors all (65 tensors, ~21 min on the
shared 2-core machine).
"""
import argparse
import json
import os
import re
import subprocess
import sys


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def pearson(a, b):
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a) ** 0.5
    vb = sum((y - mb) ** 2 for y in b) ** 0.5
    return cov / (va * vb)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lowbit", default="build/ci/lowbit")
    ap.add_argument("--model", default="models/lowbit-ref-30m")
    ap.add_argument("--imatrix", required=True)
    ap.add_argument("--base", default="", help="KLD base file of the source model (perplexity --kl-divergence-base)")
    ap.add_argument("--calib", default="", help="calibration text: the base is computed on its first --chunks chunks")
    ap.add_argument("--type", default="q2_k")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tensors", default="sample", help="'all' or 'sample' (layers 0, 4, 8 + embedding + output)")
    ap.add_argument("--work", default="/tmp/mix-proxy")
    ap.add_argument("--json", default="")
    ap.add_argument("--measured", default="",
                    help="a --json file of an earlier run: re-rank today's proxy against its KLDs, measure nothing")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if not a.measured and bool(a.base) == bool(a.calib):
        ap.error("give exactly one of --calib TEXT and --base FILE (or --measured FILE)")
    if a.calib and not a.measured:
        a.base = os.path.join(a.work, "calib-base.kld")
        run([a.lowbit, "perplexity", "-m", a.model, "-f", a.calib, "--chunks", str(a.chunks), "--kl-divergence-base",
             a.base, "-t", str(a.threads)])
    report = os.path.join(a.work, "mix-report.json")
    run([a.lowbit, "quantize", "-m", a.model, "-o", os.path.join(a.work, "mix.gguf"), "--method", "mix",
         "--target-bpw", "5", "--imatrix", a.imatrix, "--mix-report", report, "--no-progress",
         "-t", str(a.threads)])
    rep = json.load(open(report))
    proxy = {}
    for t in rep["tensors"]:
        for c in t["candidates"]:
            if t["quantized"] and c["type"] == a.type:
                proxy[t["name"]] = c["damage"]
    names = sorted(proxy)
    if a.tensors == "sample":
        names = [n for n in names if not n.startswith("blk.") or re.match(r"blk\.(0|4|8)\.", n)]
    rows = []
    if a.measured:
        m = json.load(open(a.measured))
        if m["type"] != a.type:
            ap.error(f"--measured has type {m['type']}, not {a.type}")
        kld = {r["tensor"]: r["kld"] for r in m["rows"]}
        names = [n for n in names if n in kld]
        rows = [(n, proxy[n], kld[n]) for n in names]
        a.chunks, floor = m["chunks"], m["floor"]
        names = []
    for n in names:
        out = os.path.join(a.work, "one.gguf")
        run([a.lowbit, "quantize", "-m", a.model, "-o", out, "--method", "f16", "--tensor-type",
             "^" + re.escape(n) + "$=" + a.type, "--no-progress", "-t", str(a.threads)])
        j = json.loads(run([a.lowbit, "perplexity", "-m", out, "--kl-divergence-base", a.base, "--kl-divergence",
                            "--chunks", str(a.chunks), "--json", "-t", str(a.threads)]))
        rows.append((n, proxy[n], j["kld"]["value"]))
        print(f"{n:28s} proxy {proxy[n]:12.5g}  KLD {j['kld']['value']:.5f}", flush=True)
    if not a.measured:  # The F16 floor: every tensor F16, no override.
        out = os.path.join(a.work, "f16.gguf")
        run([a.lowbit, "quantize", "-m", a.model, "-o", out, "--method", "f16", "--no-progress", "-t", str(a.threads)])
        floor = json.loads(run([a.lowbit, "perplexity", "-m", out, "--kl-divergence-base", a.base, "--kl-divergence",
                                "--chunks", str(a.chunks), "--json", "-t", str(a.threads)]))["kld"]["value"]
    p = [r[1] for r in rows]
    k = [r[2] - floor for r in rows]
    rho = pearson(ranks(p), ranks(k))
    print(f"\nF16 floor KLD {floor:.6f}; {len(rows)} tensors at {a.type}, {a.chunks} chunks")
    print("| tensor | proxy | measured KLD − F16 floor | KLD / proxy |\n|---|---:|---:|---:|")
    for (n, pr, kl), kk in zip(rows, k):
        print(f"| {n} | {pr:.4g} | {kk:.5f} | {kk / pr if pr else 0:.3g} |")
    print(f"\nSpearman rank correlation (proxy vs measured KLD): {rho:.3f}")
    if a.json and not a.measured:
        json.dump({"type": a.type, "chunks": a.chunks, "text": a.calib or a.base, "floor": floor, "spearman": rho,
                   "rows": [{"tensor": n, "proxy": pr, "kld": kl} for n, pr, kl in rows]}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
