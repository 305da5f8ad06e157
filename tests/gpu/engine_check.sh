#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The CUDA engine's whole-model checks on the reference model (issue 11), run once per device and compared:
#   tests/gpu/engine_check.sh cpu  OUT_A   (here, any machine)
#   tests/gpu/engine_check.sh cuda OUT_B   (on the GPU machine)
#   tests/gpu/engine_check.sh compare OUT_A OUT_B
# Per type (F16, Q8_0, Q4_K_M GGUFs of models/lowbit-ref-30m, made with `lowbit quantize`): greedy generation of 64
# tokens (must be identical text) and wikitext-2 perplexity over CHUNKS chunks of 512 (must agree within 0.1 %).
# Env: LOWBIT (default build/ci/lowbit), WIKI (wiki.test.raw; default $LOWBIT_SHARED/data/wikitext-2-raw/wiki.test.raw),
#      CHUNKS (default 20), TYPES (default "f16 q8_0 q4_k_m rtn int8"; rtn = a Hugging Face int4 g128 directory, which
#      the engine runs through the kI4Z decoder like GPTQ/AWQ/HQQ int4; also gptq, awq, hqq, nf4), QDIR (quantized files
#      kept there and reused: give both runs the same QDIR).
set -euo pipefail
mode=$1
LOWBIT=${LOWBIT:-build/ci/lowbit}
CHUNKS=${CHUNKS:-20}
TYPES=${TYPES:-f16 q8_0 q4_k_m rtn int8}
PROMPT="The history of the city begins in the early"
if [ "$mode" = compare ]; then
    a=$2 b=$3 bad=0
    for t in $TYPES; do
        if cmp -s "$a/run-$t.txt" "$b/run-$t.txt"; then echo "$t: greedy 64 tokens identical"; else
            echo "$t: greedy generation DIFFERS"; diff "$a/run-$t.txt" "$b/run-$t.txt" | head -5 || true; bad=1; fi
        pa=$(grep -oE 'PPL = [0-9.]+' "$a/ppl-$t.txt" | tail -1 | cut -d' ' -f3)
        pb=$(grep -oE 'PPL = [0-9.]+' "$b/ppl-$t.txt" | tail -1 | cut -d' ' -f3)
        python3 -c "import sys; a,b=float('$pa'),float('$pb'); d=abs(b-a)/a*100; print(f'$t: PPL cpu {a:.4f} cuda {b:.4f} ({d:.4f} %)'); sys.exit(d > 0.1)" || bad=1
    done
    exit $bad
fi
out=$2
mkdir -p "$out"
WIKI=${WIKI:-${LOWBIT_SHARED:-../shared}/data/wikitext-2-raw/wiki.test.raw}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
qdir=${QDIR:-$work} # QDIR: keep the quantized files there and reuse them (both devices measure the same files —
mkdir -p "$qdir"    # GPTQ/AWQ calibration may run on the GPU when one is present)
for t in $TYPES; do
    case $t in rtn | gptq | awq | hqq | nf4 | int8) f=$qdir/ref-$t ;; *) f=$qdir/ref-$t.gguf ;; esac
    extra=()
    case $t in gptq | awq) extra=(--calib self --nsamples 16 --seqlen 256) ;; esac
    [ -e "$f" ] || "$LOWBIT" quantize -m models/lowbit-ref-30m -o "$f" --method "$t" "${extra[@]}" --no-progress >/dev/null 2>&1
    "$LOWBIT" run -m "$f" --device "$mode" -p "$PROMPT" -n 64 --temp 0 --seed 1 2>"$out/run-$t.err" >"$out/run-$t.txt"
    "$LOWBIT" perplexity -m "$f" --device "$mode" -f "$WIKI" --chunks "$CHUNKS" >"$out/ppl-$t.txt" 2>&1
    echo "$t: $(grep -oE 'PPL = [0-9.]+' "$out/ppl-$t.txt" | tail -1)"
done
