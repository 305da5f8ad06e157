#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One device call's worth of CUDA-engine checks, from binaries built elsewhere and carried in BIN (default
# .carry/bin: lowbit, lowbit_kernel_gputests, lowbit_runtime_gputests, make_synthetic_model):
#   1. the gpu-label test binaries (matmul parity per type, whole-model logits vs the CPU, slots, graphs);
#   2. tests/gpu/engine_check.sh cuda on the reference model (greedy text + perplexity, compared with a CPU run
#      made elsewhere by `engine_check.sh cpu` and `engine_check.sh compare`);
#   3. optionally (QUICK_BENCH=1) lowbit bench --device cuda on a synthetic 7B-shaped model of TYPES.
# Results go to OUT (default $OUT, as the device tool provides). Usage: tests/gpu/run_on_device.sh
set -uo pipefail
BIN=${BIN:-.carry/bin}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
chmod +x "$BIN"/* 2>/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
"$BIN/lowbit" version | tee -a "$OUT/gpu.txt"
for t in lowbit_kernel_gputests lowbit_runtime_gputests; do
    timeout 300 "$BIN/$t" --gtest_brief=1 >"$OUT/$t.txt" 2>&1
    echo "$t exit $?: $(grep -cE '^\[       OK|^\[  PASSED' "$OUT/$t.txt") ok lines, $(grep -c FAILED "$OUT/$t.txt") FAILED lines"
done
WIKI=${WIKI:-.carry/wiki.test.raw} LOWBIT=$BIN/lowbit CHUNKS=${CHUNKS:-20} tests/gpu/engine_check.sh cuda "$OUT/engine-cuda" 2>&1 | tail -5
if [ "${QUICK_BENCH:-0}" = 1 ]; then
    W=/tmp/qb && mkdir -p $W
    "$BIN/make_synthetic_model" $W/m --tokenizer-from models/lowbit-ref-30m --hidden 4096 --ff 11008 \
        --layers "${LAYERS:-32}" --heads 32 --kv-heads 32 --ctx 4096 --threads 16 >/dev/null
    for t in ${TYPES:-q4_0}; do
        "$BIN/lowbit" quantize -m $W/m -o $W/$t.gguf --method "$t" --no-progress -t 16 >/dev/null 2>&1
        "$BIN/lowbit" bench -m $W/$t.gguf --device cuda -p 512 -n 128 -r 3 2>"$OUT/bench-$t.err" | tee "$OUT/bench-$t.txt"
    done
fi
