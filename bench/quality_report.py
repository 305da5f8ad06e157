#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Quality report: every quantization method on one model, judged the same way (issue 5's table).

For each method: quantize (or convert for F16), then `lowbit perplexity` on wikitext-2 test (ctx 512,
llama.cpp protocol) with KL divergence against the source model's stored log-probs. Prints a markdown table:
size, bpw (all tensor bytes incl. scales / all params), PPL ± err, ΔPPL %, mean KLD, same-top-token %.

usage: bench/quality_report.py [--lowbit build/release/lowbit] [--model models/lowbit-ref-30m]
                               [--text $LOWBIT_SHARED/data/wikitext-2-raw/wiki.test.raw] [--chunks N]
                               [--work DIR] [--only m1,m2] [--threads T]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

METHODS = [  # (row label, quantize --method, extra args); None = the source itself / F16 convert
    ("F16", "f16", []),
    ("Q8_0", "q8_0", []),
    ("int8 (LLM.int8)", "int8", []),
    ("RTN int4 g128", "rtn", ["--bits", "4", "--group-size", "128"]),
    ("NF4 + DQ", "nf4", []),
    ("FP4 + DQ", "fp4", []),
    ("HQQ 4-bit g64", "hqq", ["--bits", "4", "--group-size", "64"]),
    ("HQQ 3-bit g64", "hqq", ["--bits", "3", "--group-size", "64"]),
    ("HQQ 2-bit g64", "hqq", ["--bits", "2", "--group-size", "64"]),
    ("Q6_K", "q6_k", []),
    ("Q5_K_M", "q5_k_m", []),
    ("Q4_K_M", "q4_k_m", []),
    ("Q4_K_M + imatrix", "q4_k_m", ["--imatrix", "{imatrix}"]),
    ("Q4_0", "q4_0", []),
    ("Q3_K_M", "q3_k_m", []),
    ("Q2_K", "q2_k", []),
    ("GPTQ int4 g128 (asym, act-order)", "gptq", ["--bits", "4", "--group-size", "128", "--asym", "--desc-act",
                                                  "--calib", "{calib}", "--nsamples", "32", "--seqlen", "512"]),
    ("GPTQ int3 g128 (asym, act-order)", "gptq", ["--bits", "3", "--group-size", "128", "--asym", "--desc-act",
                                                  "--calib", "{calib}", "--nsamples", "32", "--seqlen", "512"]),
    ("RTN int3 g128", "rtn", ["--bits", "3", "--group-size", "128"]),
]


def run(cmd, **kw):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout, time.time() - t0


def dir_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs
               if f.endswith((".safetensors", ".gguf")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lowbit", default="build/release/lowbit")
    ap.add_argument("--model", default="models/lowbit-ref-30m")
    ap.add_argument("--text", default=os.path.join(os.environ.get("LOWBIT_SHARED", "../shared"),
                                                   "data/wikitext-2-raw/wiki.test.raw"))
    ap.add_argument("--calib", default=os.path.join(os.environ.get("LOWBIT_SHARED", "../shared"),
                                                    "data/corpus/calib.txt"))
    ap.add_argument("--chunks", type=int, default=-1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--work", default="build/quality")
    ap.add_argument("--only", default="")
    ap.add_argument("--json-out", default="")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    lb, t = a.lowbit, ["-t", str(a.threads)]
    ppl_args = ["-f", a.text, "-c", "512", "--chunks", str(a.chunks)] + t
    base = os.path.join(a.work, "base.kld")
    out, secs = run([lb, "perplexity", "-m", a.model, "--kl-divergence-base", base, "--json"] + ppl_args)
    src = json.loads(out)
    print(f"source {a.model}: PPL {src['ppl']:.4f} ± {src['stderr']:.4f} over {src['n_tokens']} tokens "
          f"({src['n_chunks']} chunks, {secs:.0f} s)", file=sys.stderr)
    imatrix = os.path.join(a.work, "imatrix.gguf")
    if any("{imatrix}" in " ".join(m[2]) for m in METHODS) and not os.path.exists(imatrix):
        run([lb, "imatrix", "-m", a.model, "-f", a.calib, "-o", imatrix, "-c", "512", "--chunks", "100"] + t)
    only = set(a.only.split(",")) if a.only else None
    rows = []
    for label, method, extra in METHODS:
        if only and method not in only and label not in only:
            continue
        extra = [x.replace("{imatrix}", imatrix).replace("{calib}", a.calib) for x in extra]
        gguf = (method.startswith("q") and method != "gptq") or method in ("f16", "bf16", "f32")
        name = re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")
        qpath = os.path.join(a.work, name + (".gguf" if gguf else ""))
        try:
            qout, qsecs = run([lb, "quantize", "-m", a.model, "-o", qpath, "--method", method, "--no-progress"]
                              + extra + t)
            m = re.search(r"total: (\d+) params, (\d+) tensor bytes", qout)
            bpw = 8.0 * int(m.group(2)) / int(m.group(1)) if m else float("nan")
            kout, ksecs = run([lb, "perplexity", "-m", qpath, "--kl-divergence-base", base, "--kl-divergence",
                               "--json"] + ppl_args)
            k = json.loads(kout)
            ppl = k["ppl"]["value"] if isinstance(k["ppl"], dict) else k["ppl"]
            row = {"method": label, "size_mib": dir_size(qpath) / 2**20, "bpw": bpw, "ppl": ppl,
                   "ppl_err": k["ppl"].get("error", 0.0) if isinstance(k["ppl"], dict) else 0.0,
                   "dppl_pct": 100.0 * (ppl / src["ppl"] - 1.0),
                   "kld": k["kld"]["value"], "kld_err": k["kld"]["error"],
                   "top1_pct": k["same_top_p_pct"]["value"], "quantize_s": qsecs, "eval_s": ksecs}
        except Exception as e:  # report and keep going: one broken method must not hide the others
            row = {"method": label, "error": str(e).splitlines()[0]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(f"Model {a.model}, wikitext-2 test, ctx 512, llama.cpp protocol, "
          f"{src['n_chunks']} chunks / {src['n_tokens']} scored tokens; source PPL {src['ppl']:.4f}; "
          f"KLD vs the source model.\n")
    print("| method | size MiB | bpw | PPL | ΔPPL % | mean KLD | same top-1 % |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['method']} | – | – | – | – | – | failed: {r['error']} |")
        else:
            print(f"| {r['method']} | {r['size_mib']:.2f} | {r['bpw']:.3f} | {r['ppl']:.4f} ± {r['ppl_err']:.4f} | "
                  f"{r['dppl_pct']:+.2f} | {r['kld']:.5f} ± {r['kld_err']:.5f} | {r['top1_pct']:.2f} |")
    if a.json_out:
        json.dump({"source": src, "rows": rows}, open(a.json_out, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
