#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HQQ on a synthetic Llama-2-7B-shaped model (32 layers x q,k,v,o 4096x4096 + gate,up 11008x4096 + down
# 4096x11008, bf16 heavy-tailed), 4-bit g64 axis 1, through quantize_hqq_weights (the per-Linear call of
# `lowbit quantize --method hqq`, packing and records included): CUDA on all layers, CPU on one layer
# (extrapolated), layer 0 compared byte for byte, CUDA phase times, ratio to hqq's ~0.03 s/matrix (ANCHORS.md).
#   bench/hqq_7b.sh [BUILD_DIR] [extra hqq_bench 7b flags, e.g. --layers 8 --pageable]
# Measured 2026-11-27 (CUDA build, one H100 80GB, 16 host cores): cuda 2.31 s for 224 matrices (10.3 ms/matrix,
# 15.5 ms per 4096x11008 = 1.9x faster than the anchor; per matrix: 1.5 ms host copy to pinned, 2.2 ms H2D,
# 3.6 ms kernels, 0.35 ms D2H, 3.1 ms host after sync); cpu 0.40 s/matrix (~89 s for the model); layer 0 identical.
set -euo pipefail
BUILD=${1:-build/release}
shift || true
exec "$BUILD/tools/hqq_bench" 7b "$@"
