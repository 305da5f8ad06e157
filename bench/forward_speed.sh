#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tokens/s of the CPU forward pass (prompt + generation) on a synthetic Llama in memory, for a few weight dtypes.
# Usage: bench/forward_speed.sh [BUILD_DIR] [extra forward_bench args, e.g. --threads 2 --layers 4]
set -euo pipefail
build="${1:-build/release}"
shift || true
tool="$build/tools/forward_bench"
[[ -x "$tool" ]] || { echo "build the tool first: cmake --build $build --target forward_bench" >&2; exit 1; }
for dtype in f32 f16 bf16 q8_0 q4_k; do
    echo "== $dtype"
    "$tool" --dtype "$dtype" "$@" || echo "($dtype failed)"
done
