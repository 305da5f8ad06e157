#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lowbit's CUDA engine against llama.cpp's CUDA back end on the same GGUF files (issue 11's benchmark), in one go on a
# GPU machine. Builds llama.cpp (llama-bench, CUDA, only the card's arch) from the source the llama-cpp-python sdist
# carries — in the background while the model is made — writes a synthetic Llama-2-7B-shaped model (random bf16
# weights, tests/tools/make_synthetic_model; the reference model's 8192-token vocabulary), converts it to an F16 GGUF
# and quantizes it to Q8_0 / Q4_0 / Q4_K_M with `lowbit quantize`, then per file runs `lowbit bench --device cuda` and
# `llama-bench -ngl 99` (-p PP -n TG -r REPS), interleaved, and prints tokens/s, the lowbit ÷ llama.cpp ratios and
# the tg GB/s (weight bytes × tok/s) against the card's measured device-to-device copy bandwidth. Then lowbit's
# batch-16 decode throughput (16 sequences) on Q4_K_M (B16: more files).
#   bench/gpu_vs_llamacpp.sh            (on the GPU machine; ~8 min on an H100)
# Env: LOWBIT (default build/cuda-dev/lowbit), TOOLS (dir with make_synthetic_model), LCPP_SRC (a llama.cpp source
#      tree or .tar.xz of one; default: ../peers/llama_cpp_python-0.3.36/vendor/llama.cpp), WORK (/tmp/gpu-bench),
#      PP (512), TG (128), REPS (3), TYPES ("f16 q8_0 q4_0 q4_k_m"), HF_TYPES ("rtn nf4": Hugging Face int4 g128 and
#      NF4 directories of the same model, lowbit only), B16 ("q4_k_m": the files also measured as 16-sequence decode,
#      GGUF types or HF_TYPES names), LAYERS (32), ARCH (90), OUT (results dir), THREADS
#      (quantization threads; default nproc), PREP_ONLY (set: stop once the files are written), NO_LCPP (set: lowbit
#      only, no llama.cpp build or runs).
set -uo pipefail

LOWBIT=${LOWBIT:-build/cuda-dev/lowbit}
TOOLS=${TOOLS:-build/cuda-dev/tools}
LCPP_SRC=${LCPP_SRC:-../peers/llama_cpp_python-0.3.36/vendor/llama.cpp}
WORK=${WORK:-/tmp/gpu-bench}
PP=${PP:-512}
TG=${TG:-128}
REPS=${REPS:-3}
TYPES=${TYPES:-f16 q8_0 q4_0 q4_k_m}
HF_TYPES=${HF_TYPES-rtn nf4}
LAYERS=${LAYERS:-32}
ARCH=${ARCH:-90}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
J=$(nproc)
THREADS=${THREADS:-$J}
log() { echo "[$(date +%T)] $*"; }

# 1. llama.cpp with CUDA, in the background.
LB=$WORK/lcpp-build/bin/llama-bench
if [ -n "${NO_LCPP:-}" ]; then
    LB= # lowbit only
elif [ ! -x "$LB" ]; then
    if [ -f "$LCPP_SRC" ]; then
        mkdir -p "$WORK/lcpp-src" && tar xJf "$LCPP_SRC" -C "$WORK/lcpp-src" && src=$WORK/lcpp-src/llama.cpp
    else
        src=$LCPP_SRC
    fi
    (cmake -S "$src" -B "$WORK/lcpp-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=ON >"$OUT/lcpp-cmake.log" 2>&1 &&
        cmake --build "$WORK/lcpp-build" -j"$J" --target llama-bench >"$OUT/lcpp-build.log" 2>&1) &
    LCPP_PID=$!
fi

# 2. The model and its GGUFs.
M=$WORK/synth7b
need=0
for t in $TYPES; do [ -f "$WORK/synth7b-$t.gguf" ] || need=1; done
for h in $HF_TYPES; do [ -f "$WORK/synth7b-$h/config.json" ] || need=1; done
if [ "$need" = 1 ] && [ ! -f "$M/config.json" ]; then
    log "making the synthetic 7B model"
    "$TOOLS/make_synthetic_model" "$M" --tokenizer-from models/lowbit-ref-30m --hidden 4096 --ff 11008 \
        --layers "$LAYERS" --heads 32 --kv-heads 32 --ctx 4096 --threads "$THREADS" >/dev/null || exit 1
fi
for t in $TYPES; do
    f=$WORK/synth7b-$t.gguf
    if [ ! -f "$f" ]; then
        log "lowbit quantize $t"
        "$LOWBIT" quantize -m "$M" -o "$f" --method "$t" --no-progress -t "$THREADS" >/dev/null || exit 1
    fi
done
# HF quantized directories of the same model (issue 12's model level: GPTQ/AWQ/RTN int4 g128 share the kI4Z
# kernels; NF4), measured by lowbit only (llama.cpp does not read them).
for h in $HF_TYPES; do
    d=$WORK/synth7b-$h
    case $h in
    rtn) args=(--method rtn --bits 4 --group-size 128) ;;
    *) args=(--method "$h") ;;
    esac
    if [ ! -f "$d/config.json" ]; then
        log "lowbit quantize $h"
        "$LOWBIT" quantize -m "$M" -o "$d" "${args[@]}" --no-progress -t "$THREADS" >/dev/null || exit 1
    fi
done
rm -rf "$M" # the quantized files are what is measured; free the page cache and disk
[ -n "${PREP_ONLY:-}" ] && exit 0

# 3. Copy bandwidth of the card (bytes read + written), for the roofline.
python3 - >"$OUT/copy_bw.txt" <<'EOF'
import torch
n = 1 << 30
a = torch.empty(n, dtype=torch.uint8, device="cuda"); b = torch.empty_like(a)
for _ in range(3): b.copy_(a)
torch.cuda.synchronize()
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
ts = []
for _ in range(10):
    s.record(); b.copy_(a); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e) / 1e3)
ts.sort()
print(f"{2 * n / ts[len(ts) // 2] / 1e9:.0f}")
EOF
BW=$(cat "$OUT/copy_bw.txt")
log "device-to-device copy: $BW GB/s; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"

if [ -n "${LCPP_PID:-}" ]; then
    log "waiting for the llama.cpp build"
    wait "$LCPP_PID" || { tail -20 "$OUT/lcpp-build.log"; LB=; }
fi

# 4. Interleaved: per file lowbit, then llama-bench.
avg() { python3 -c 'import json,sys
for l in sys.stdin:
    l=l.strip()
    if l.startswith("{"):
        j=json.loads(l); print(j["n_prompt"], j["n_gen"], j["avg_ts"], j["model_size"])'; }
printf '%-8s %-6s %12s %12s %8s %10s\n' type test lowbit llama.cpp ratio "lowbit GB/s" >"$OUT/table.txt"
for t in $TYPES; do
    f=$WORK/synth7b-$t.gguf
    "$LOWBIT" bench -m "$f" --device cuda -p "$PP" -n "$TG" -r "$REPS" --json 2>"$OUT/lowbit-$t.err" | tee "$OUT/lowbit-$t.jsonl" | avg >"$WORK/l.txt"
    : >"$WORK/c.txt"
    [ -n "$LB" ] && "$LB" -m "$f" -ngl 99 -p "$PP" -n "$TG" -r "$REPS" -o jsonl 2>"$OUT/llama-$t.err" | tee "$OUT/llama-$t.jsonl" | avg >"$WORK/c.txt"
    python3 - "$t" "$BW" "$WORK/l.txt" "$WORK/c.txt" >>"$OUT/table.txt" <<'EOF'
import sys
t, bw, lf, cf = sys.argv[1], float(sys.argv[2] or 0), sys.argv[3], sys.argv[4]
def rd(f):
    d = {}
    for l in open(f):
        p, g, ts, size = l.split(); d["pp" if int(p) else "tg"] = (float(ts), int(size))
    return d
l, c = rd(lf), rd(cf)
for test in ("pp", "tg"):
    if test not in l: continue
    lt, size = l[test]; ct = c.get(test, (0, 0))[0]
    gbs = size * lt / 1e9 if test == "tg" else 0
    ratio = f"{lt / ct:.2f}x" if ct else "-"
    extra = f"{gbs:8.0f} ({100 * gbs / bw:.0f}% of copy)" if test == "tg" and bw else ""
    print(f"{t:<8} {test:<6} {lt:12.1f} {ct:12.1f} {ratio:>8} {extra}")
EOF
done
for h in $HF_TYPES; do
    "$LOWBIT" bench -m "$WORK/synth7b-$h" --device cuda -p "$PP" -n "$TG" -r "$REPS" --json 2>"$OUT/lowbit-$h.err" |
        tee "$OUT/lowbit-$h.jsonl" | avg >"$WORK/l.txt"
    python3 -c 'import sys
for l in open(sys.argv[2]):
    p, g, ts, size = l.split(); kind = "pp" if int(p) else "tg"; dash = "-"
    print(f"{sys.argv[1]:<8} {kind:<6} {float(ts):12.1f} {dash:>12} {dash:>8}")' \
        "$h" "$WORK/l.txt" >>"$OUT/table.txt"
done
# 5. Batch-16 decode (16 sequences, one token each per step): B16 (default q4_k_m; GGUF types or HF_TYPES names).
for b in ${B16-q4_k_m}; do
    f=$WORK/synth7b-$b.gguf
    [ -e "$f" ] || f=$WORK/synth7b-$b
    [ -e "$f" ] || continue
    "$LOWBIT" bench -m "$f" --device cuda -p 0 -n "$TG" --n-seq 16 -r "$REPS" --json \
        2>"$OUT/lowbit-b16-$b.err" | tee "$OUT/lowbit-b16-$b.jsonl" >/dev/null
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.startswith("{"): ts = json.loads(l)["avg_ts"]; print(f"{sys.argv[2]:<8} tg x16  {ts:12.1f} tok/s aggregate (16 sequences)")' \
        "$OUT/lowbit-b16-$b.jsonl" "$b" >>"$OUT/table.txt"
done
cat "$OUT/table.txt"
