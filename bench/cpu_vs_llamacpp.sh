#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lowbit's CPU engine against llama.cpp on the same GGUF files (issue 16's benchmark). Builds llama.cpp (CPU) outside
# the repository from the source carried by the llama-cpp-python sdist on PyPI, makes a ~1 B-parameter synthetic Llama
# (TinyLlama-1.1B shapes, random bf16 weights, tests/tools/make_synthetic_model), converts it to an F16 GGUF and
# quantizes it to Q8_0 / Q4_0 / Q4_K_M with `lowbit quantize`, then per file runs `llama-bench` and `lowbit bench`
# interleaved A/B/A/B (ROUNDS rounds, -p PP -n TG -r REPS each) and prints tokens/s and the lowbit ÷ llama.cpp ratios
# (medians over rounds). Also `lowbit bench` on NF4 / HQQ 4-bit / RTN int4 g128 directories of the same model and the
# peak RSS of each lowbit run, and lowbit's tg as weight-bytes read per second against the machine's read bandwidth
# (tests/tools/read_bandwidth, THREADS threads, the best of measurements before every file's runs and after the last:
# a shared machine's bandwidth moves with its load, so this is the best seen, and a percentage is a lower bound).
# Absolute numbers on a shared machine are noise; the ratios of one run are the signal.
# A benchmark script (needs PyPI, ~10 min of compiling and several GB of disk), not a test:
#   bench/cpu_vs_llamacpp.sh
# Env: LOWBIT (default build/release/lowbit), TOOLS (default build/release/tools or build/ci/tools), PEERS (default
#      ../peers), WORK (default build/cpu-bench), THREADS (default nproc), PP (128), TG (64), REPS (3), ROUNDS (2),
#      TYPES (default "f16 q8_0 q4_0 q4_k_m"), HF_TYPES (default "nf4 hqq rtn"; HF_TYPES="" runs none), LAYERS (22).
# Status 2026-12-07: not yet run as a whole script; the same measurement done by hand for f16/q8_0/q4_0 (Q4_K_M file
# not made) is in docs/bench/cpu-vs-llamacpp-2026-12-07.txt.
set -euo pipefail

LOWBIT=${LOWBIT:-build/release/lowbit}
TOOLS=${TOOLS:-$( [ -x build/release/tools/make_synthetic_model ] && echo build/release/tools || echo build/ci/tools)}
PEERS=${PEERS:-../peers}
WORK=${WORK:-build/cpu-bench}
THREADS=${THREADS:-$(nproc)}
PP=${PP:-128}
TG=${TG:-64}
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-2}
TYPES=${TYPES:-f16 q8_0 q4_0 q4_k_m}
HF_TYPES=${HF_TYPES-nf4 hqq rtn} # set but empty: none
LAYERS=${LAYERS:-22}
mkdir -p "$WORK"
. "$(dirname "$0")/lib/llamacpp_cpu.sh"
llamacpp_cpu "$PEERS" "$THREADS" llama-bench llama-quantize llama-perplexity llama-imatrix

# The model: TinyLlama-1.1B shapes, the reference model's tokenizer (vocab 8192).
M=$WORK/synth1b
if [ ! -f "$M/config.json" ]; then
    "$TOOLS/make_synthetic_model" "$M" --tokenizer-from models/lowbit-ref-30m --hidden 2048 --ff 5632 \
        --layers "$LAYERS" --heads 32 --kv-heads 4 --ctx 2048 --threads "$THREADS" >/dev/null
fi
for t in $TYPES; do
    f=$WORK/synth1b-$t.gguf
    [ -f "$f" ] || "$LOWBIT" quantize -m "$M" -o "$f" --method "$t" --no-progress -t "$THREADS" >/dev/null
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }
# llama-bench -o jsonl and lowbit bench --json share field names: one "avg_ts" per test line (pp first, then tg).
lcpp() { "$BIN/llama-bench" -m "$1" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" -o jsonl 2>/dev/null; }
lowb() { "$LOWBIT" bench -m "$1" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" --json 2>"$WORK/lowbit-bench.err"; }
field() { python3 -c "import json,sys; [print(json.loads(l)['$1']) for l in sys.stdin if l.strip()]"; }

bw() { "$TOOLS/read_bandwidth" --threads "$THREADS" --reps 3 | awk '{print $3}'; }
BW0=$(bw)
: >"$WORK/rows.txt"
printf '\n%-10s %10s %10s %10s %10s %8s %8s %10s %9s\n' file "lcpp pp" "lowbit pp" "lcpp tg" "lowbit tg" "pp x" "tg x" "RSS MiB" \
    "tg GB/s"
for t in $TYPES; do
    f=$WORK/synth1b-$t.gguf
    BW0=$(printf '%s\n%s\n' "$BW0" "$(bw)" | sort -g | tail -1)
    : >"$WORK/$t.lcpp" && : >"$WORK/$t.lowbit"
    for _ in $(seq "$ROUNDS"); do
        lcpp "$f" >>"$WORK/$t.lcpp"
        lowb "$f" >>"$WORK/$t.lowbit"
    done
    lpp=$(grep -h '"n_gen": *0' "$WORK/$t.lcpp" | field avg_ts | median)
    ltg=$(grep -h '"n_prompt": *0' "$WORK/$t.lcpp" | field avg_ts | median)
    wpp=$(field avg_ts <"$WORK/$t.lowbit" | awk 'NR % 2 == 1' | median)
    wtg=$(field avg_ts <"$WORK/$t.lowbit" | awk 'NR % 2 == 0' | median)
    rss=$(field peak_rss_bytes <"$WORK/$t.lowbit" | sort -g | tail -1)
    size=$(field model_size <"$WORK/$t.lowbit" | head -1)
    awk -v t="$t" -v a="$lpp" -v b="$wpp" -v c="$ltg" -v d="$wtg" -v r="$rss" -v z="$size" \
        'BEGIN {printf "%-10s %10.2f %10.2f %10.2f %10.2f %8.2f %8.2f %10.0f %9.1f\n", t, a, b, c, d, b / a, d / c, r / 1048576, z * d / 1e9}' |
        tee -a "$WORK/rows.txt"
done

# HF quantized directories of the same model (lowbit only: llama.cpp does not read them).
for h in $HF_TYPES; do
    d=$WORK/synth1b-$h
    case $h in
    rtn) args=(--method rtn --bits 4 --group-size 128) ;;
    hqq) args=(--method hqq --bits 4 --group-size 64) ;;
    *) args=(--method "$h") ;;
    esac
    [ -f "$d/config.json" ] || "$LOWBIT" quantize -m "$M" -o "$d" "${args[@]}" --no-progress -t "$THREADS" >/dev/null
    lowb "$d" >"$WORK/$h.lowbit"
    awk -v t="$h" -v pp="$(field avg_ts <"$WORK/$h.lowbit" | head -1)" \
        -v tg="$(field avg_ts <"$WORK/$h.lowbit" | tail -1)" -v r="$(field peak_rss_bytes <"$WORK/$h.lowbit" | tail -1)" \
        -v z="$(field model_size <"$WORK/$h.lowbit" | head -1)" \
        'BEGIN {printf "%-10s %10s %10.2f %10s %10.2f %8s %8s %10.0f %9.1f\n", t, "-", pp, "-", tg, "-", "-", r / 1048576, z * tg / 1e9}' |
        tee -a "$WORK/rows.txt"
done
BW=$(printf '%s\n%s\n' "$BW0" "$(bw)" | sort -g | tail -1)
echo "# read bandwidth ($THREADS threads, best seen during the run): $BW GB/s; lowbit tg as weight bytes x tok/s:"
awk -v bw="$BW" '{printf "#   %-10s %6.1f GB/s = %3.0f %% of the read bandwidth\n", $1, $NF, 100 * $NF / bw}' "$WORK/rows.txt"
