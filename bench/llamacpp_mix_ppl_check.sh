#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 14: llama.cpp's perplexity on lowbit's budgeted mixed-precision GGUF files (per-tensor types q2_k..q8_0)
# must agree with lowbit's own within 0.2 %. Both score the same protocol: wikitext-2 test, chunks of -c 512 tokens
# with BOS first, the second half of each chunk scored (llama-perplexity's default; `lowbit perplexity` without
# --stride). llama-perplexity comes from the llama.cpp carried by the llama-cpp-python sdist, built (CPU) outside
# the repository, e.g. `cmake --build ../peers/lcpp-server-build --target llama-perplexity` (or as
# bench/llamacpp_gguf_check.sh builds it). A benchmark script, not a test.
#   bench/llamacpp_mix_ppl_check.sh [MIX.gguf ...]
# With no files, makes one: `quantize --method mix --target-bpw 4.5 --calib calib.txt`.
# Env: LOWBIT (default build/ci/lowbit), LLAMA_BIN (dir of llama-perplexity, default ../peers/lcpp-server-build/bin),
#      LOWBIT_SHARED, WORK (default build/llamacpp-mix), CHUNKS (default 20), THREADS, MODEL.
# Exit 1 when llama.cpp's and lowbit's (-b 1) PPLs of a file differ by more than 0.2 %.
set -euo pipefail

LOWBIT=${LOWBIT:-build/ci/lowbit}
LLAMA_BIN=${LLAMA_BIN:-../peers/lcpp-server-build/bin}
SHARED=${LOWBIT_SHARED:-../shared}
WORK=${WORK:-build/llamacpp-mix}
CHUNKS=${CHUNKS:-20}
THREADS=${THREADS:-$(nproc)}
MODEL=${MODEL:-models/lowbit-ref-30m}
TEXT=$SHARED/data/wikitext-2-raw/wiki.test.raw
CALIB=$SHARED/data/corpus/calib.txt
mkdir -p "$WORK"
[ -x "$LLAMA_BIN/llama-perplexity" ] || { echo "no llama-perplexity in $LLAMA_BIN (set LLAMA_BIN)" >&2; exit 1; }
export LD_LIBRARY_PATH=$LLAMA_BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    "$LOWBIT" quantize -m "$MODEL" -o "$WORK/mix-4.5.gguf" --method mix --target-bpw 4.5 --calib "$CALIB" \
        --no-progress -t "$THREADS" >"$WORK/mix-4.5.log"
    files=("$WORK/mix-4.5.gguf")
fi

# lowbit twice: batched (-b 512: prompt batches dequantize weight tiles, f32 activations) and one token per pass
# (-b 1: packed-weight dots with 8-bit activations, ggml's block_q8_K / q8_0, as llama.cpp's CPU back end computes
# every matmul). The 0.2 % check is on the latter, the same arithmetic; both are printed.
status=0
printf "| %-34s | %13s | %14s | %9s | %14s | %9s |\n" file "llama.cpp PPL" "lowbit -b 512" diff "lowbit -b 1" diff
lowbit_ppl() {
    "$LOWBIT" perplexity -m "$1" -f "$TEXT" -c 512 --chunks "$CHUNKS" -b "$2" -t "$THREADS" --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["ppl"])'
}
for f in "${files[@]}"; do
    log=$WORK/$(basename "$f").llama.log
    "$LLAMA_BIN/llama-perplexity" -m "$f" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" >"$log" 2>&1
    lp=$(grep -E "Final estimate: PPL = " "$log" | sed -E 's/.*PPL = ([0-9.]+).*/\1/')
    bp=$(lowbit_ppl "$f" 512)
    b1=$(lowbit_ppl "$f" 1)
    d=$(python3 -c "print(f'{100 * ($bp / $lp - 1):+.3f} %')")
    d1=$(python3 -c "print(f'{100 * ($b1 / $lp - 1):+.3f} %')")
    printf "| %-34s | %13s | %14.4f | %9s | %14.4f | %9s |\n" "$(basename "$f")" "$lp" "$bp" "$d" "$b1" "$d1"
    python3 -c "import sys; sys.exit(abs($b1 / $lp - 1) > 0.002)" || { echo "  > 0.2 %: $f" >&2; status=1; }
done
exit $status
