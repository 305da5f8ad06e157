#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# AWQ 4-bit g128 on a synthetic Llama-2-7B-shaped model (random bf16 weights, random calibration tokens), on the GPU:
# wall time, peak host RSS, peak GPU memory, and the ratio to the target (issue 6: AWQ <= 3 min for 7B on one H100;
# AutoAWQ: 10-15 min, docs/ANCHORS.md). AutoAWQ's calibration size by default: 128 samples x 512 tokens.
# Meant for the device machine; a benchmark script, not a timed test.
#   bench/awq_7b.sh                                   # 32 layers, 128 x 512 tokens
#   LAYERS=8 bench/awq_7b.sh                          # fewer layers: the time is extrapolated to 32
# Env: LOWBIT (binary), MKMODEL (make_synthetic_model), WORK (scratch dir, default /tmp), TOKENIZER_FROM (default
#      models/lowbit-ref-30m), EXTRA (more quantize flags, e.g. "--sym").
# Measured 2026-11-27, one H100 80GB HBM3 (16 cores), lowbit built with CUDA (docs/device/awq-7b-h100.txt):
#   wall 110.5 s (target 180 s: 0.61x; AutoAWQ 10-15 min: 0.18-0.12x), peak host RSS 22.4 GiB, peak GPU 17.7 GiB;
#   AWQ driver 99.7 s = 3.1 s per layer: scale search 80.0 s (20 ratios x 4 groups, block GEMMs in TF32), weight reads +
#   uploads 7.6 s, fold + clip + quantize + code download 5.2 s, capture + propagation passes 5.9 s; then packing and
#   writing the 3.3 GiB AWQ checkpoint ~10 s. Model generation 13.09 GB in ~7 s (not counted). Final tree, same card:
#   107.8 s (docs/device/final-tree-awq-gptq-h100.txt).
set -euo pipefail

METHOD=awq
LAYERS=${LAYERS:-32}
NSAMPLES=${NSAMPLES:-128}
SEQLEN=${SEQLEN:-512}
WORK=${WORK:-/tmp}
TOKENIZER_FROM=${TOKENIZER_FROM:-models/lowbit-ref-30m}
EXTRA=${EXTRA:-}
pick() { for f in "$@"; do [ -x "$f" ] && { echo "$f"; return; }; done; echo "$1"; }
LOWBIT=${LOWBIT:-$(pick .carry/gpuawq/lowbit build/release/lowbit build/devcuda/lowbit)}
MKMODEL=${MKMODEL:-$(pick .carry/gpuawq/make_synthetic_model build/release/tools/make_synthetic_model \
    build/devcuda/tools/make_synthetic_model)}
TARGET_S=180 ANCHOR_LABEL="AutoAWQ ~600 s" ANCHOR_S=600 PER_LAYER_NOTE=""
. "$(dirname "$0")/lib/calib_7b.sh"
run_calib_7b
