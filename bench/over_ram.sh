#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Larger-than-RAM demo: GPTQ-quantize a synthetic bf16 Llama that is bigger than a hard memory limit.
# The weights are mmap'd and only one decoder layer is bound at a time (gptq_job.h), and the packed output is
# written into model.safetensors as each linear finishes (GptqCheckpointStream), so host memory stays near
# activations + one layer even though the model file is larger than the limit.
#
# Usage: bench/over_ram.sh [BUILD_DIR]      (default build/release; needs BUILD_DIR/lowbit, root for the cgroup)
# Environment (defaults in brackets):
#   MODEL_GB [6]  approximate model size; the layer count is derived from it and the shape below
#   LIMIT_GB [3]  hard memory limit of the quantize process (anonymous memory + page cache, no swap)
#   HIDDEN [1024] FF [2816] HEADS [16] KV_HEADS [4]  decoder shape (narrow: GPTQ work per byte grows with the
#                 inputs K, so a narrow model of many layers keeps the run short on a small CPU)
#   LOWBIT, MKMODEL  binaries (default BUILD_DIR/lowbit, BUILD_DIR/tools/make_synthetic_model)
#   NSAMPLES [4] SEQLEN [128] THREADS [all]  calibration (random tokens) and threads
#   WORK [/tmp/lowbit_over_ram]  model + output folder (removed at the end unless KEEP=1)
#
# The limit is a memory cgroup made as a child of this shell's own cgroup: cgroup v2 memory.max (+ swap.max 0),
# else cgroup v1 memory.limit_in_bytes, else `systemd-run --scope -p MemoryMax=`. Not `ulimit -v`/`prlimit --as`:
# RLIMIT_AS counts address space, and mapping the model file alone needs more than the limit, so quantization
# would fail at open although it would never use that much memory (the script shows this when SHOW_ULIMIT=1).
# Page cache counts against a cgroup limit too; clean file pages (the mmap'd weights) are reclaimed under
# pressure, which is exactly what lets a model bigger than the limit stream through.
# Prints: model size, limit, peak RSS (/usr/bin/time), peak anonymous RSS (sampled), cgroup peak usage, OOM kills,
# wall time, success (exit 0 and every linear's four GPTQ records in the output).
set -euo pipefail

build="${1:-build/release}"
lowbit="${LOWBIT:-$build/lowbit}"
mkmodel="${MKMODEL:-$build/tools/make_synthetic_model}"
for b in "$lowbit" "$mkmodel"; do
    [[ -x "$b" ]] || { echo "over_ram: $b not found (cmake --build $build --target lowbit make_synthetic_model)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "over_ram: /usr/bin/time (GNU time) is needed for the peak RSS" >&2; exit 1; }
src_dir="$(cd "$(dirname "$0")/.." && pwd)"
model_gb="${MODEL_GB:-6}"
limit_gb="${LIMIT_GB:-3}"
work="${WORK:-/tmp/lowbit_over_ram}"
threads="${THREADS:-$(nproc)}"
model="$work/model"
out="$work/out"
mkdir -p "$work"

# 1. The synthetic model (tests/tools/make_synthetic_model: bf16, tokenizer of the reference model, vocab 8192),
#    then evicted from the page cache so the quantize run has to read it through its own (limited) memory.
hidden="${HIDDEN:-1024}" ff="${FF:-2816}" heads="${HEADS:-16}" kv_heads="${KV_HEADS:-4}"
layers=$(python3 -c "
H, F, NH, NKV, V = $hidden, $ff, $heads, $kv_heads, 8192
per_layer = 2 * H * H + 2 * H * (NKV * (H // NH)) + 3 * H * F + 2 * H
print(max(1, round(($model_gb * 2**30 / 2 - 2 * V * H - H) / per_layer)))")
"$mkmodel" "$model" --tokenizer-from "$src_dir/models/lowbit-ref-30m" --hidden "$hidden" --ff "$ff" \
    --layers "$layers" --heads "$heads" --kv-heads "$kv_heads" --ctx 2048 --threads "$threads" >/dev/null
python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" \
    "$model/model.safetensors"
echo "model: $layers layers, hidden $hidden, ff $ff, heads $heads/$kv_heads" >&2

model_bytes=$(stat -c %s "$model/model.safetensors")
limit_bytes=$(python3 -c "print(int($limit_gb * 2**30))")

# 2. A memory cgroup under our own, holding only the quantize process.
cg="" cg_kind=""
own=$(awk -F: '$1=="0"{print $3}' /proc/self/cgroup)
if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    cg="/sys/fs/cgroup${own%/}/lowbit_over_ram_$$" cg_kind=v2
    mkdir "$cg" && echo "$limit_bytes" >"$cg/memory.max" && { echo 0 >"$cg/memory.swap.max" 2>/dev/null || true; }
elif v1=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup) && [[ -d /sys/fs/cgroup/memory ]]; then
    cg="/sys/fs/cgroup/memory${v1%/}/lowbit_over_ram_$$" cg_kind=v1
    mkdir "$cg" && echo "$limit_bytes" >"$cg/memory.limit_in_bytes"
    echo "$limit_bytes" >"$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
elif command -v systemd-run >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    cg_kind=systemd
else
    echo "over_ram: no memory cgroup available (need root with cgroup v1/v2 memory, or systemd)" >&2
    exit 1
fi
cleanup() {
    [[ -n "$cg" && -d "$cg" ]] && rmdir "$cg" 2>/dev/null || true
    [[ "${KEEP:-0}" == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT

if [[ "${SHOW_ULIMIT:-0}" == 1 ]]; then
    echo "== prlimit --as=$limit_bytes (the wrong tool: counts the mmap'd file):"
    prlimit --as="$limit_bytes" "$lowbit" quantize -m "$model" -o "$out" --method gptq --calib random \
        --nsamples 1 --seqlen 16 --no-progress -t "$threads" 2>&1 | tail -2 || true
    rm -rf "$out"
fi

# 3. The run: GPTQ int4 g128 with random calibration tokens, under the limit.
cmd=("$lowbit" quantize -m "$model" -o "$out" --method gptq --bits 4 --group-size 128 --calib random
     --nsamples "${NSAMPLES:-4}" --seqlen "${SEQLEN:-128}" --no-progress -t "$threads")
t0=$(date +%s.%N)
# Peak anonymous memory (heap: activations, one layer, Hessians) sampled once a second from the cgroup's
# processes; the peak RSS of time -v also counts mapped model pages, which the kernel reclaims under the limit.
echo 0 >"$work/anon_peak_kb"
if [[ -n "$cg" ]]; then
    (while [[ -d "$cg" ]]; do
        for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do
            a=$(awk '/RssAnon/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
            [[ -n "$a" && "$a" -gt $(cat "$work/anon_peak_kb") ]] && echo "$a" >"$work/anon_peak_kb"
        done
        sleep 1
    done) &
    sampler=$!
fi
set +e
case "$cg_kind" in
v1 | v2) /usr/bin/time -v -o "$work/time.txt" sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
             "${cmd[@]}" >"$work/log.txt" 2>&1 ;;
systemd) /usr/bin/time -v -o "$work/time.txt" systemd-run --scope --quiet -p MemoryMax="$limit_bytes" \
             -p MemorySwapMax=0 "${cmd[@]}" >"$work/log.txt" 2>&1 ;;
esac
rc=$?
set -e
t1=$(date +%s.%N)
[[ -n "${sampler:-}" ]] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null || true
anon_peak_kb=$(cat "$work/anon_peak_kb")
peak_rss_kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time.txt")
cg_peak="n/a" ooms="n/a"
if [[ $cg_kind == v1 ]]; then
    cg_peak=$(cat "$cg/memory.max_usage_in_bytes")
    ooms=$(awk '/oom_kill /{print $2}' "$cg/memory.oom_control")
elif [[ $cg_kind == v2 ]]; then
    cg_peak=$(cat "$cg/memory.peak" 2>/dev/null || echo n/a)
    ooms=$(awk '/oom_kill /{print $2}' "$cg/memory.events")
fi
tail -4 "$work/log.txt"
ok=no
if [[ $rc == 0 && -f "$out/model.safetensors" ]]; then
    # Every linear of every layer must be in the output with its four GPTQ records.
    python3 - "$out/model.safetensors" "$model/config.json" <<'EOF' && ok=yes
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
L = json.load(open(sys.argv[2]))["num_hidden_layers"]
mods = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
        "mlp.up_proj", "mlp.down_proj"]
miss = [f"model.layers.{i}.{m}.{s}" for i in range(L) for m in mods for s in ("qweight", "qzeros", "scales", "g_idx")
        if f"model.layers.{i}.{m}.{s}" not in h]
sys.exit(1 if miss else 0)
EOF
fi
gib() { python3 -c "v='$1'; print(f'{int(v)/2**30:.2f} GiB' if v.isdigit() else v)"; }
echo "model size:      $(gib "$model_bytes") ($model_bytes bytes)"
echo "memory limit:    $(gib "$limit_bytes") (cgroup $cg_kind)"
echo "peak RSS:        $(gib $((peak_rss_kb * 1024))) (incl. mapped model pages, reclaimable)"
echo "peak anon RSS:   $(gib $((anon_peak_kb * 1024))) (sampled each second: heap, activations, one layer)"
echo "cgroup peak:     $(gib "$cg_peak") (anonymous + page cache charged to the cgroup)"
echo "oom kills:       $ooms"
echo "output:          $(du -sh "$out" 2>/dev/null | cut -f1)"
echo "wall time:       $(python3 -c "print(f'{$t1 - $t0:.1f} s')")"
echo "success:         $ok (exit $rc)"
[[ $ok == yes ]]
