#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Batched decode on the CPU: `lowbit bench --n-seq N` aggregate tg tokens/s for N = 1, 4, 8, 16 on the reference
# model's GGUFs (made here with the first binary's `lowbit quantize`), binaries interleaved A/B in every round so
# that load changes on a shared machine hit both alike. Per run it prints the aggregate wall-clock t/s (llama-bench's
# avg_ts) and tokens per CPU-second of the process (user + sys of all its threads: warm-up and repetitions
# included, load excluded by difference), which stays meaningful when other jobs take cores. Then, per binary and
# file, the median over rounds and each N's ratio to N = 1 (issue #13's target: N = 16 >= 3x), and B / A per N.
# Usage: bench/batch_decode.sh BIN_A [BIN_B] (env: ROUNDS=3, N_GEN=64, REPS=3, THREADS=2, NSEQ="1 4 8 16",
#        TYPES="q4_k_m q4_0", WORK=/tmp/lowbit-batch-decode, MODEL=models/lowbit-ref-30m)
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 BIN_A [BIN_B]" >&2; exit 2; }
export ROUNDS="${ROUNDS:-3}" N_GEN="${N_GEN:-64}" REPS="${REPS:-3}" THREADS="${THREADS:-2}"
export NSEQ="${NSEQ:-1 4 8 16}" TYPES="${TYPES:-q4_k_m q4_0}"
export WORK="${WORK:-/tmp/lowbit-batch-decode}" MODEL="${MODEL:-models/lowbit-ref-30m}"
exec python3 - "$@" <<'EOF'
import json, os, resource, statistics, subprocess, sys, time

bins, env = sys.argv[1:], os.environ
rounds, n_gen, reps, threads = int(env["ROUNDS"]), int(env["N_GEN"]), int(env["REPS"]), env["THREADS"]
nseq, types, work = env["NSEQ"].split(), env["TYPES"].split(), env["WORK"]
os.makedirs(work, exist_ok=True)
for t in types:
    out = os.path.join(work, "ref-%s.gguf" % t)
    if not os.path.exists(out):
        subprocess.run([bins[0], "quantize", "-m", env["MODEL"], "-o", out, "--method", t], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
print("# %s %s (%d cpus), load %s, threads %s, tg%d x %d reps (+1 warm-up)" % (
    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), cpu, os.cpu_count(),
    " ".join(open("/proc/loadavg").read().split()[:3]), threads, n_gen, reps), flush=True)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(b, path, n, gen):
    c0 = children_cpu()
    p = subprocess.run([b, "bench", "-m", path, "-p", "0", "-n", str(gen), "-r", str(reps), "-t", threads,
                        "--n-seq", str(n), "--json"], check=True, capture_output=True, text=True)
    return json.loads(p.stdout.strip().splitlines()[-1])["avg_ts"], children_cpu() - c0


wall, per_cpu = {}, {}
for r in range(rounds):
    for t in types:
        path = os.path.join(work, "ref-%s.gguf" % t)
        for n in nseq:
            for i, b in enumerate(bins):
                ts, sec = run(b, path, n, n_gen)
                _, sec0 = run(b, path, n, 1)  # the same run generating 1 token: load + fixed costs, subtracted
                tokens = int(n) * (n_gen - 1) * (reps + 1)
                wall.setdefault((t, i, n), []).append(ts)
                per_cpu.setdefault((t, i, n), []).append(tokens / max(sec - sec0, 1e-9))
                print("round %d %-6s bin %d n_seq %2s: %7.1f t/s wall, %7.1f t/CPU-s" % (
                    r + 1, t, i + 1, n, ts, per_cpu[(t, i, n)][-1]), flush=True)
print("# medians over %d rounds (ratio to n_seq 1 in parentheses)" % rounds)
for name, d in (("wall t/s", wall), ("t/CPU-s", per_cpu)):
    med = {k: statistics.median(v) for k, v in d.items()}
    for t in types:
        for i in range(len(bins)):
            print("%-8s %-6s bin %d: " % (name, t, i + 1) + "  ".join(
                "n%s %.1f (%.2fx)" % (n, med[(t, i, n)], med[(t, i, n)] / med[(t, i, "1")]) for n in nseq))
        if len(bins) == 2:
            print("%-8s %-6s bin 2 / bin 1: " % (name, t) + "  ".join(
                "n%s %.2fx" % (n, med[(t, 1, n)] / med[(t, 0, n)]) for n in nseq))
EOF
