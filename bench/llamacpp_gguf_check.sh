#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lowbit's GGUF files in a real llama.cpp: builds llama.cpp (CPU) outside the repository from the source carried by the
# llama-cpp-python sdist on PyPI, then
#   1. checks that lowbit's plain Q4_K_M and Q4_0 files are byte-identical to llama-quantize's from the same F16 GGUF;
#   2. makes llama.cpp's own imatrix Q4_K_M (llama-imatrix on calib.txt + llama-quantize --imatrix), the anchor;
#   3. scores every file with llama-perplexity (wikitext-2 test, ctx 512, --kl-divergence against the F16 logits):
#      llama.cpp's imatrix Q4_K_M vs lowbit's GPTQ-calibrated Q4_K_M (`--method gptq --format gguf`) at the same size,
#      and Q4_0 vs GPTQ -> Q4_0 — the issue-6 moonshot, measured by llama.cpp itself.
# A benchmark script (needs PyPI and ~5 min of compiling), not a test.
#   bench/llamacpp_gguf_check.sh
# Env: LOWBIT (default build/release/lowbit), PEERS (where llama.cpp is built, default ../peers), LOWBIT_SHARED,
#      WORK (default build/llamacpp-check), CHUNKS (default 100), THREADS, NSAMPLES (GPTQ calibration, default 32).
# Measured 2026-11-27 on the 2-core development machine (llama.cpp from llama-cpp-python 0.3.36), 100 chunks:
#   llama-quantize Q4_K_M and Q4_0 == lowbit's files byte for byte; F16 PPL 59.7028 (lowbit's perplexity: 59.7030).
#   | file (18.9 MB Q4_K_M / 18.1 MB Q4_0)   | PPL     | mean KLD  | same top-1 |
#   | llama.cpp Q4_K_M + its own imatrix     | 61.1346 | 0.038457  | 87.90 %    |
#   | lowbit GPTQ -> Q4_K_M (256 B smaller)  | 60.7367 | 0.036564  | 88.14 %    |  KLD -4.9 %
#   | llama.cpp Q4_K_M (no imatrix)          | 61.7556 | 0.045567  | 86.78 %    |
#   | llama.cpp Q4_0                         | 64.0595 | 0.085864  | 82.66 %    |
#   | lowbit GPTQ -> Q4_0                    | 63.4617 | 0.072263  | 84.02 %    |  KLD -15.8 %
set -euo pipefail

LOWBIT=${LOWBIT:-build/release/lowbit}
PEERS=${PEERS:-../peers}
SHARED=${LOWBIT_SHARED:-../shared}
WORK=${WORK:-build/llamacpp-check}
CHUNKS=${CHUNKS:-100}
THREADS=${THREADS:-$(nproc)}
NSAMPLES=${NSAMPLES:-32}
MODEL=${MODEL:-models/lowbit-ref-30m}
VERSION=0.3.36
TEXT=$SHARED/data/wikitext-2-raw/wiki.test.raw
CALIB=$SHARED/data/corpus/calib.txt
mkdir -p "$PEERS" "$WORK"
PEERS=$(cd "$PEERS" && pwd)
BIN=$PEERS/lcpp-build/bin

if [ ! -x "$BIN/llama-perplexity" ]; then
    pip download "llama-cpp-python==$VERSION" --no-binary :all: --no-deps -d "$PEERS"
    tar xzf "$PEERS/llama_cpp_python-$VERSION.tar.gz" -C "$PEERS"
    src=$PEERS/llama_cpp_python-$VERSION/vendor/llama.cpp
    cmake -S "$src" -B "$PEERS/lcpp-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=ON
    cmake --build "$PEERS/lcpp-build" -j"$THREADS" --target llama-perplexity llama-quantize llama-imatrix
fi
export LD_LIBRARY_PATH=$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
T=(-t "$THREADS")

# lowbit's files.
"$LOWBIT" quantize -m "$MODEL" -o "$WORK/f16.gguf" --method f16 --no-progress "${T[@]}" >/dev/null
for t in q4_k_m q4_0; do
    "$LOWBIT" quantize -m "$MODEL" -o "$WORK/lowbit-$t.gguf" --method $t --no-progress "${T[@]}" >/dev/null
done
for t in Q4_K_M Q4_0; do
    [ -f "$WORK/gptq-$t.gguf" ] || "$LOWBIT" quantize -m "$MODEL" -o "$WORK/gptq-$t.gguf" --method gptq --format gguf \
        --type $t --calib "$CALIB" --nsamples "$NSAMPLES" --seqlen 512 --no-progress "${T[@]}" >/dev/null
done
# llama.cpp's files from lowbit's F16.
"$BIN/llama-quantize" "$WORK/f16.gguf" "$WORK/llamacpp-q4_k_m.gguf" Q4_K_M "$THREADS" >"$WORK/lq1.log" 2>&1
"$BIN/llama-quantize" "$WORK/f16.gguf" "$WORK/llamacpp-q4_0.gguf" Q4_0 "$THREADS" >"$WORK/lq2.log" 2>&1
"$BIN/llama-imatrix" -m "$WORK/f16.gguf" -f "$CALIB" -o "$WORK/llamacpp-imatrix.gguf" -c 512 --chunks 100 "${T[@]}" \
    >"$WORK/li.log" 2>&1
"$BIN/llama-quantize" --imatrix "$WORK/llamacpp-imatrix.gguf" "$WORK/f16.gguf" "$WORK/llamacpp-q4_k_m-imat.gguf" \
    Q4_K_M "$THREADS" >"$WORK/lq3.log" 2>&1
for t in q4_k_m q4_0; do
    if cmp -s "$WORK/lowbit-$t.gguf" "$WORK/llamacpp-$t.gguf"; then echo "$t: lowbit == llama-quantize (byte-identical)"
    else echo "$t: lowbit and llama-quantize DIFFER"; fi
done

P=(-f "$TEXT" -c 512 --chunks "$CHUNKS" "${T[@]}")
"$BIN/llama-perplexity" -m "$WORK/f16.gguf" --kl-divergence-base "$WORK/base.kld" "${P[@]}" >"$WORK/ppl-f16.log" 2>&1
grep -E "Final estimate" "$WORK/ppl-f16.log" | sed 's/^/f16: /'
printf "| %-26s | %10s | %8s | %9s | %10s |\n" file bytes PPL "mean KLD" "same top-1"
for f in llamacpp-q4_k_m-imat gptq-Q4_K_M llamacpp-q4_k_m llamacpp-q4_0 gptq-Q4_0; do
    log=$WORK/kld-$f.log
    "$BIN/llama-perplexity" -m "$WORK/$f.gguf" --kl-divergence-base "$WORK/base.kld" --kl-divergence "${P[@]}" >"$log" 2>&1
    ppl=$(grep -E "^Mean PPL\(Q\) +:" "$log" | awk '{print $4}')
    kld=$(grep -E "^Mean +KLD" "$log" | awk '{print $3}')
    top=$(grep -E "^Same top p" "$log" | awk '{print $4}')
    printf "| %-26s | %10s | %8s | %9s | %8s %% |\n" "$f" "$(stat -c %s "$WORK/$f.gguf")" "$ppl" "$kld" "$top"
done
