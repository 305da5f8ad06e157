#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `lowbit quantize` against llama-quantize on the same F16 GGUF (issue 16's quantization-time target: <= 0.5x
# llama-quantize's wall time, peak RSS no more than llama-quantize's, output byte-identical). Makes a ~1 B-parameter
# synthetic Llama (TinyLlama-1.1B shapes, as bench/cpu_vs_llamacpp.sh), converts it to an F16 GGUF with lowbit, then
# per type (Q8_0, Q4_0, Q4_K_M) and round runs llama-quantize and `lowbit quantize` on that file, interleaved (the
# order alternates between rounds), each under `/usr/bin/time -f "%e %M"` (wall seconds, peak RSS KiB), `cmp`s the
# two outputs, and prints medians over rounds and the lowbit / llama-quantize ratios. Both get THREADS threads.
# The F16 input stays in the page cache between runs (both read it warm); each output is removed before its run.
# A benchmark script (several GB of disk, minutes per round), not a test:
#   bench/quantize_vs_llamacpp.sh
# Env: LOWBIT (default build/release/lowbit, else build/ci/lowbit), TOOLS (build/release/tools or build/ci/tools),
#      PEERS (../peers; llama-quantize from PEERS/lcpp-build/bin, built by bench/lib/llamacpp_cpu.sh if missing),
#      WORK (build/quant-bench), THREADS (nproc), ROUNDS (3), TYPES ("q8_0 q4_0 q4_k_m"), LAYERS (22),
#      Exit status 1 if any output pair differs.
set -euo pipefail

LOWBIT=${LOWBIT:-$( [ -x build/release/lowbit ] && echo build/release/lowbit || echo build/ci/lowbit)}
TOOLS=${TOOLS:-$( [ -x build/release/tools/make_synthetic_model ] && echo build/release/tools || echo build/ci/tools)}
PEERS=${PEERS:-../peers}
WORK=${WORK:-build/quant-bench}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-3}
TYPES=${TYPES:-q8_0 q4_0 q4_k_m}
LAYERS=${LAYERS:-22}
mkdir -p "$WORK"
. "$(dirname "$0")/lib/llamacpp_cpu.sh"
llamacpp_cpu "$PEERS" "$THREADS" llama-quantize llama-bench llama-server

M=$WORK/synth1b
if [ ! -f "$M/config.json" ]; then
    "$TOOLS/make_synthetic_model" "$M" --tokenizer-from models/lowbit-ref-30m --hidden 2048 --ff 5632 \
        --layers "$LAYERS" --heads 32 --kv-heads 4 --ctx 2048 --threads "$THREADS" >/dev/null
fi
F16=$WORK/synth1b-f16.gguf
[ -f "$F16" ] || "$LOWBIT" convert "$M" -o "$F16" --type f16 >/dev/null
cat "$F16" >/dev/null # warm the page cache for the first run

upper() { echo "$1" | tr '[:lower:]' '[:upper:]'; }
# run NAME TYPE: one timed run; appends "seconds peak_kib" to $WORK/NAME-TYPE.times.
run() {
    local out=$WORK/out-$1-$2.gguf
    rm -f "$out"
    if [ "$1" = lcpp ]; then
        /usr/bin/time -f "%e %M" -o "$WORK/last.time" "$BIN/llama-quantize" "$F16" "$out" "$(upper "$2")" "$THREADS" \
            >"$WORK/lcpp-$2.log" 2>&1
    else
        /usr/bin/time -f "%e %M" -o "$WORK/last.time" "$LOWBIT" quantize -m "$F16" -o "$out" --method "$2" \
            -t "$THREADS" --no-progress >"$WORK/lowbit-$2.log" 2>&1
    fi
    tail -1 "$WORK/last.time" >>"$WORK/$1-$2.times"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "# $(date -u +%FT%TZ) $(uname -m) $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs));" \
    "THREADS=$THREADS ROUNDS=$ROUNDS; $("$LOWBIT" version 2>/dev/null | head -1) at $(git rev-parse --short HEAD 2>/dev/null);" \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# input $F16: $(stat -c %s "$F16") bytes"
status=0
for t in $TYPES; do
    : >"$WORK/lcpp-$t.times" && : >"$WORK/lowbit-$t.times"
    same=yes
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then run lcpp "$t"; run lowbit "$t"; else run lowbit "$t"; run lcpp "$t"; fi
        echo "round $r $t: llama-quantize $(tail -1 "$WORK/lcpp-$t.times") lowbit $(tail -1 "$WORK/lowbit-$t.times") (s KiB)"
        cmp -s "$WORK/out-lcpp-$t.gguf" "$WORK/out-lowbit-$t.gguf" || same=no
    done
    [ "$same" = yes ] || status=1
    # per-round ratios (the two runs of a round are adjacent, so they share the machine's load), then their median
    rr=$(paste "$WORK/lcpp-$t.times" "$WORK/lowbit-$t.times" | awk '{print $3 / $1}' | median)
    echo "$t $same $(awk '{print $1}' "$WORK/lcpp-$t.times" | median) $(awk '{print $1}' "$WORK/lowbit-$t.times" | median) \
$(awk '{print $2}' "$WORK/lcpp-$t.times" | median) $(awk '{print $2}' "$WORK/lowbit-$t.times" | median) $rr" >>"$WORK/summary"
done
printf '\n%-8s %10s %10s %8s %10s %12s %12s %8s %10s\n' type "lcpp s" "lowbit s" "time x" "rounds x" "lcpp RSS MiB" \
    "lowbit MiB" "RSS x" identical
tail -n "$(echo $TYPES | wc -w)" "$WORK/summary" | while read -r t same a b c d rr; do
    awk -v t="$t" -v a="$a" -v b="$b" -v c="$c" -v d="$d" -v s="$same" -v rr="$rr" \
        'BEGIN {printf "%-8s %10.2f %10.2f %8.2f %10.2f %12.0f %12.0f %8.2f %10s\n", t, a, b, b / a, rr, c / 1024, d / 1024, d / c, s}'
done
echo "time x: median lowbit s / median llama-quantize s; rounds x: median of the per-round ratios; RSS: peak resident set"
exit $status
