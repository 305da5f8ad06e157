#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 12's kernel table in one run on a GPU machine: lowbit's engine matmuls (tests/tools/gpu_matmul_bench: the
# engine's own path per type — GEMV for m <= 32, dequantize + cuBLAS above) for the HF layouts as the engine holds
# them (i4z = GPTQ/AWQ/HQQ/RTN int4 groups, nf4x64 / fp4x64 = bitsandbytes 4-bit, i8 = LLM.int8 with 8 outlier
# columns; i8list = the same through LOWBIT_INT8_GEMV=list) and the GGUF types, then the PyPI
# libraries on the same shapes (bench/gpu_hf_peers.py: fp16 cuBLAS, torch int4 tinygemm, bitsandbytes NF4 and
# LLM.int8, hqq's torch backend), then the issue's ratios at each m.
#   bench/gpu_kernels.sh   Env: TOOLS (dir with gpu_matmul_bench; default build/cuda-dev/tools), SHAPES
#   (11008x4096,4096x11008 = out x in: 4096→11008 and 11008→4096), MS (1,16,256), OUT (results dir, default
#   /tmp/gpu-kernels).
set -uo pipefail
TOOLS=${TOOLS:-build/cuda-dev/tools}
SHAPES=${SHAPES:-11008x4096,4096x11008}
MS=${MS:-1,16,256}
OUT=${OUT:-/tmp/gpu-kernels}
mkdir -p "$OUT"
"$TOOLS/gpu_matmul_bench" --types f16,i4z,nf4x64,fp4x64,i8,q4_0,q8_0,q4_k --m "$MS" --shapes "$SHAPES" | tee "$OUT/lowbit.txt"
# LLM.int8's opt-in outlier-list path (LOWBIT_INT8_GEMV=list) as its own rows, "i8list".
LOWBIT_INT8_GEMV=list "$TOOLS/gpu_matmul_bench" --types i8 --m "$MS" --shapes "$SHAPES" | awk '$1 == "i8" {$1 = "i8list"} 1' |
    tee -a "$OUT/lowbit.txt"
python3 "$(dirname "$0")/gpu_hf_peers.py" --shapes "$SHAPES" --m "$MS" | tee "$OUT/peers.txt"
python3 - "$OUT/lowbit.txt" "$OUT/peers.txt" <<'EOF'
import sys
low, peer = {}, {}
for l in open(sys.argv[1]):
    p = l.split()
    if len(p) == 5 and p[0] != "type":
        low[(p[0], p[1], int(p[2]))] = float(p[3])
for l in open(sys.argv[2]):
    if l.startswith("#") or l.startswith("library") or "failed" in l:
        continue
    name, rest = l[:26].strip(), l[26:].split()
    if len(rest) == 4:
        peer[(name, rest[0], int(rest[1]))] = float(rest[2])
rows = [  # (lowbit type, peer, issue target as a fraction of the peer's time at m = 1)
    ("i4z", "fp16 cuBLAS", 0.3), ("i4z", "torch int4 tinygemm g128", 1.0), ("nf4x64", "bitsandbytes NF4 (dq)", 0.4),
    ("i4z", "hqq 4-bit g64 (torch)", 0.1), ("i8", "fp16 cuBLAS", 1.0), ("i8list", "fp16 cuBLAS", 1.0),
    ("i8", "bitsandbytes LLM.int8 t=6", None),
    ("f16", "fp16 cuBLAS", None), ("q4_0", "fp16 cuBLAS", None)]
print(f"\n{'lowbit':<8} {'vs':<26} {'shape':<12} {'m':>4} {'lowbit us':>10} {'peer us':>9} {'ratio':>7}  target (m=1)")
for t, name, target in rows:
    for (pn, shape, m), pus in sorted(peer.items()):
        if pn != name or (t, shape, m) not in low:
            continue
        lus = low[(t, shape, m)]
        tgt = f"<= {target:.1f}x {'met' if lus / pus <= target else 'MISSED'}" if target and m == 1 else ""
        print(f"{t:<8} {name:<26} {shape:<12} {m:>4} {lus:10.1f} {pus:9.1f} {lus / pus:6.2f}x  {tgt}")
EOF
