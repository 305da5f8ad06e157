# SPDX-License-Identifier: MIT
# Shared body of bench/gptq_7b.sh and bench/awq_7b.sh (sourced, not run): a synthetic Llama-2-7B-shaped model (random
# bf16 weights) quantized with `lowbit quantize --method $METHOD --device cuda --calib random`, then wall time, peak
# host RSS, peak GPU memory (nvidia-smi every 200 ms and lowbit's own cudaMemGetInfo peak) and ratios to a target and
# an anchor. The caller sets: METHOD, NSAMPLES, SEQLEN, LAYERS, WORK, TOKENIZER_FROM, EXTRA, LOWBIT, MKMODEL,
# TARGET_S (seconds), ANCHOR_LABEL + ANCHOR_S (a peer's time, e.g. "gptq.py ~444 s" 444), PER_LAYER_NOTE.
run_calib_7b() {
    local model=$WORK/synth7b_l$LAYERS out=$WORK/synth7b_l${LAYERS}_$METHOD
    local log=$WORK/${METHOD}_7b_l${LAYERS}_n${NSAMPLES}x${SEQLEN}.log gpu_log=$WORK/${METHOD}_gpu_mem_l$LAYERS.csv
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    if [ ! -f "$model/model.safetensors" ]; then
        "$MKMODEL" "$model" --tokenizer-from "$TOKENIZER_FROM" --layers "$LAYERS"
    fi
    rm -rf "$out"
    : >"$gpu_log"
    local smi_pid=""
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$gpu_log" 2>/dev/null &
        smi_pid=$!
    fi
    local timer=()
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -v)
    local start end rc
    start=$(date +%s.%N)
    set +e
    "${timer[@]}" "$LOWBIT" quantize -m "$model" -o "$out" --method "$METHOD" --device cuda --calib random \
        --nsamples "$NSAMPLES" --seqlen "$SEQLEN" --bits 4 --group-size 128 --no-progress $EXTRA >"$log" 2>&1
    rc=$?
    set -e
    end=$(date +%s.%N)
    [ -n "$smi_pid" ] && kill "$smi_pid" 2>/dev/null || true
    grep -E "layer (1|2|$LAYERS)/|\(cuda\): [0-9.]+ s total|solver:|activations|total:|error" "$log" | tail -n 9 || true
    [ $rc -ne 0 ] && { echo "lowbit quantize failed (exit $rc); log tail:"; tail -n 30 "$log"; return $rc; }

    calc() { awk "BEGIN {printf \"%.4f\", $1}"; }
    local wall rss_kb gpu_smi_mib gpu_lowbit per_layer full
    wall=$(calc "$end - $start")
    rss_kb=$(grep -E "Maximum resident set size" "$log" | awk '{print $NF}')
    gpu_smi_mib=$(sort -n "$gpu_log" | tail -n 1)
    gpu_lowbit=$(grep -oE "peak GPU memory in use [0-9.]+ GiB" "$log" | awk '{print $6}' | tail -n 1)
    per_layer=$(grep -oE "layer [0-9]+/$LAYERS done in [0-9.]+ s" "$log" |
        awk '{s += $(NF-1); n++} END {if (n) printf "%.3f", s / n}')
    echo "---- $METHOD 4-bit g128, synthetic 7B shapes, $LAYERS layers, $NSAMPLES x $SEQLEN tokens ----"
    printf "wall time            %8.1f s\n" "$wall"
    [ -n "$rss_kb" ] && printf "peak host RSS        %8.2f GiB\n" "$(calc "$rss_kb / 1048576")"
    [ -n "$gpu_smi_mib" ] && printf "peak GPU memory      %8.2f GiB (nvidia-smi)\n" "$(calc "$gpu_smi_mib / 1024")"
    [ -n "$gpu_lowbit" ] && printf "peak GPU memory      %8.2f GiB (lowbit, cudaMemGetInfo)\n" "$gpu_lowbit"
    [ -n "$per_layer" ] && printf "mean time per layer  %8.2f s%s\n" "$per_layer" "${PER_LAYER_NOTE:-}"
    full=$(calc "$wall * 32 / $LAYERS")
    [ "$LAYERS" != 32 ] &&
        printf "extrapolated 32 lay. %8.1f s (wall x 32 / %d; embedding + write included once per run)\n" "$full" "$LAYERS"
    printf "vs target %s s      %8.2f x (<= 1 meets it)\n" "$TARGET_S" "$(calc "$full / $TARGET_S")"
    printf "vs %-17s %8.2f x\n" "$ANCHOR_LABEL" "$(calc "$full / $ANCHOR_S")"
}
