#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer harnesses (CMake preset `fuzz`: clang-14, ASan + UBSan) and runs every tests/fuzz/*_fuzz
# binary for SECONDS each (default 20), printing executions per harness. Exit status 1 if any harness crashed
# (the reproducer is kept in build/fuzz/artifacts/), 0 otherwise.
# Seeds (build/fuzz/seeds/<harness>/, rebuilt each run; discoveries accumulate in build/fuzz/corpus/<harness>/):
#   gguf_*:        the first 64 KiB of every GGUF under $LOWBIT_SHARED/data (golden and vocab files), plus small
#                  complete GGUFs written here with the Python `gguf` package
#   safetensors_*: the first 64 KiB of every *.safetensors under models/, plus a tiny one written here
#   hf_config_*:   every config.json under models/; tokenizer_json_*: the first 64 KiB of every tokenizer.json there
#   imatrix_*:     the first 64 KiB of every *imatrix*.gguf under $LOWBIT_SHARED/data, plus a small one written here
#   logprob_*:     small valid KL-divergence base files written here (odd and even vocabularies, 1-2 chunks)
#   session_*:     complete tiny llama GGUFs written here (f32/f16/q8_0 weights, 1-2 layers, GQA, tied or not)
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
source "$(dirname "$0")/lib/shared_env.sh"
lowbit_resolve_shared # before the cd: a relative path is relative to the caller
cd "$(dirname "$0")/.."
SECS="${1:-20}"
BUILD=build/fuzz
MAX_LEN=65536

if ! command -v clang++-14 >/dev/null; then
    echo "fuzz.sh: clang++-14 not found; skipping the fuzzers" >&2
    exit 0
fi

harnesses=()
for src in tests/fuzz/*_fuzz.cpp; do
    [ -e "$src" ] && harnesses+=("$(basename "$src" .cpp)")
done
if [ ${#harnesses[@]} -eq 0 ]; then
    echo "fuzz.sh: no harnesses in tests/fuzz" >&2
    exit 0
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${harnesses[@]}"

SEEDS="$BUILD/seeds"
rm -rf "$SEEDS"
mkdir -p "$SEEDS" "$BUILD/artifacts"

# Writes the first MAX_LEN bytes of $1 into seed dir $2.
add_prefix_seed() {
    head -c "$MAX_LEN" "$1" >"$2/$(basename "$1").head"
}

seed_gguf() {
    local dir="$SEEDS/$1"
    mkdir -p "$dir"
    if [ -n "${LOWBIT_SHARED:-}" ] && [ -d "$LOWBIT_SHARED/data" ]; then
        while IFS= read -r -d '' f; do add_prefix_seed "$f" "$dir"; done \
            < <(find "$LOWBIT_SHARED/data" -name '*.gguf' -print0)
    else
        echo "fuzz.sh: LOWBIT_SHARED is not set; seeding $1 with generated files only" >&2
    fi
    python3 - "$dir" <<'PY' || echo "fuzz.sh: could not write generated GGUF seeds (python gguf missing?)" >&2
import sys, numpy as np, gguf
d = sys.argv[1]
for i, align in enumerate([32, 8, 64]):
    w = gguf.GGUFWriter(f"{d}/generated_{i}.gguf", arch="llama")
    if align != 32:
        w.add_custom_alignment(align)
    w.add_uint32("llama.block_count", 1); w.add_uint32("llama.embedding_length", 32)
    w.add_uint32("llama.feed_forward_length", 64); w.add_uint32("llama.attention.head_count", 2)
    w.add_float32("llama.rope.freq_base", 10000.0); w.add_string("tokenizer.ggml.model", "llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "a", "b"]); w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0])
    w.add_token_types([2, 3, 3, 1, 1]); w.add_array("x.nested", [[1, 2], [3]]); w.add_bool("x.b", True)
    w.add_tensor("token_embd.weight", np.arange(5 * 32, dtype=np.float32).reshape(5, 32))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((2, 34), np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", np.ones(32, np.float16))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
}

seed_safetensors() {
    local dir="$SEEDS/$1"
    mkdir -p "$dir"
    if [ -d models ]; then
        while IFS= read -r -d '' f; do add_prefix_seed "$f" "$dir"; done \
            < <(find -L models -name '*.safetensors' -print0 2>/dev/null)
    fi
    python3 - "$dir/generated.safetensors" <<'PY'
import json, struct, sys
header = {"__metadata__": {"format": "pt"},
          "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
          "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]}}
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + bytes(range(22)))
PY
}

seed_imatrix() {
    local dir="$SEEDS/$1"
    mkdir -p "$dir"
    if [ -n "${LOWBIT_SHARED:-}" ] && [ -d "$LOWBIT_SHARED/data" ]; then
        while IFS= read -r -d '' f; do add_prefix_seed "$f" "$dir"; done \
            < <(find "$LOWBIT_SHARED/data" -name '*imatrix*.gguf' -print0)
    fi
    python3 - "$dir" <<'PY' || echo "fuzz.sh: could not write generated imatrix seeds (python gguf missing?)" >&2
import sys, numpy as np, gguf
w = gguf.GGUFWriter(f"{sys.argv[1]}/generated.gguf", arch="llama")
w.add_type("imatrix"); w.add_array("imatrix.datasets", ["calib.txt"])
w.add_uint32("imatrix.chunk_count", 2); w.add_uint32("imatrix.chunk_size", 16)
w.add_tensor("blk.0.attn_q.weight.in_sum2", np.arange(8, dtype=np.float32))
w.add_tensor("blk.0.attn_q.weight.counts", np.array([16.0], np.float32))
w.add_tensor("blk.0.ffn_up.weight.in_sum2", np.ones((2, 4), np.float32))
w.add_tensor("blk.0.ffn_up.weight.counts", np.array([[16.0, 16.0]], np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
}

seed_logprob() {
    local dir="$SEEDS/$1"
    mkdir -p "$dir"
    python3 - "$dir" <<'PY'
import struct, sys, random
random.seed(1)
for n_ctx, n_vocab, n_chunk, bos in [(4, 5, 1, 1), (6, 8, 2, -1), (3, 1, 1, 0)]:
    first = n_ctx // 2
    rows = n_ctx - 1 - first
    out = b"LBLOGPRB" + struct.pack("<IIIIIi", 1, n_ctx, n_vocab, n_chunk, first, bos)
    out += struct.pack(f"<{n_ctx * n_chunk}i", *[random.randrange(n_vocab) for _ in range(n_ctx * n_chunk)])
    slots = n_vocab + (n_vocab % 2)
    for _ in range(n_chunk * rows):
        out += struct.pack("<ff", 16.0 / 65535, -20.0)
        out += struct.pack(f"<{slots}H", *[random.randrange(65536) for _ in range(slots)])
    open(f"{sys.argv[1]}/v{n_vocab}_c{n_chunk}.bin", "wb").write(out)
PY
}

seed_session() {
    local dir="$SEEDS/$1"
    mkdir -p "$dir"
    python3 - "$dir" <<'PY' || echo "fuzz.sh: could not write generated model seeds (python gguf missing?)" >&2
import sys, numpy as np, gguf
rng = np.random.default_rng(0)
T = gguf.GGMLQuantizationType
def q8_0(a):  # rows of 32-element blocks: f16 scale + 32 int8
    a = a.reshape(-1, 32); d = np.abs(a).max(1, keepdims=True) / 127; d[d == 0] = 1
    q = np.round(a / d).astype(np.int8)
    return np.concatenate([d.astype(np.float16).view(np.uint8), q.view(np.uint8)], 1).reshape(-1)
for i, (layers, hidden, heads, kv, ff, vocab, wtype, tied) in enumerate(
        [(1, 32, 2, 2, 64, 8, "f32", True), (2, 32, 4, 2, 32, 12, "f16", False), (1, 32, 2, 1, 64, 8, "q8_0", False)]):
    w = gguf.GGUFWriter(f"{sys.argv[1]}/model_{i}.gguf", arch="llama")
    w.add_block_count(layers); w.add_embedding_length(hidden); w.add_feed_forward_length(ff)
    w.add_head_count(heads); w.add_head_count_kv(kv); w.add_context_length(64)
    w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
    w.add_string("tokenizer.ggml.model", "llama")
    toks = ["<unk>", "<s>", "</s>", "\u2581a", "\u2581b", "a", "b", " "] + [f"t{j}" for j in range(vocab - 8)]
    w.add_token_list(toks); w.add_token_scores([0.0] * vocab); w.add_token_types([2, 3, 3] + [1] * (vocab - 3))
    w.add_bos_token_id(1); w.add_eos_token_id(2)
    def mat(name, rows, cols):
        a = rng.standard_normal((rows, cols)).astype(np.float32) * 0.1
        if wtype == "f16": w.add_tensor(name, a.astype(np.float16))
        elif wtype == "q8_0": w.add_tensor(name, q8_0(a).reshape(rows, cols // 32 * 34), raw_dtype=T.Q8_0)
        else: w.add_tensor(name, a)
    hd = hidden // heads
    w.add_tensor("token_embd.weight", rng.standard_normal((vocab, hidden)).astype(np.float32))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    if not tied: mat("output.weight", vocab, hidden)
    for l in range(layers):
        p = f"blk.{l}."
        w.add_tensor(p + "attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(hidden, np.float32))
        mat(p + "attn_q.weight", heads * hd, hidden); mat(p + "attn_k.weight", kv * hd, hidden)
        mat(p + "attn_v.weight", kv * hd, hidden); mat(p + "attn_output.weight", hidden, heads * hd)
        mat(p + "ffn_gate.weight", ff, hidden); mat(p + "ffn_up.weight", ff, hidden)
        mat(p + "ffn_down.weight", hidden, ff)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
PY
}

failed=()
for h in "${harnesses[@]}"; do
    case "$h" in
        gguf*) seed_gguf "$h" ;;
        safetensors*) seed_safetensors "$h" ;;
        imatrix*) seed_imatrix "$h" ;;
        logprob*) seed_logprob "$h" ;;
        session*) seed_session "$h" ;;
        hf_config*) mkdir -p "$SEEDS/$h"; find -L models -name config.json -exec cp {} "$SEEDS/$h/" \; ;;
        tokenizer_json*) mkdir -p "$SEEDS/$h"; find -L models -name tokenizer.json -exec sh -c \
            'head -c "$1" "$2" >"$3/$(basename "$(dirname "$2")").json"' _ "$MAX_LEN" {} "$SEEDS/$h" \; ;;
        *) mkdir -p "$SEEDS/$h" ;;
    esac
    mkdir -p "$BUILD/corpus/$h"
    log="$BUILD/$h.log"
    echo "== $h: ${SECS}s, $(ls "$SEEDS/$h" | wc -l) seeds"
    if "$BUILD/fuzz/$h" "$BUILD/corpus/$h" "$SEEDS/$h" -max_total_time="$SECS" -max_len="$MAX_LEN" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$h-" >"$log" 2>&1; then
        execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
        echo "   ok: ${execs:-?} executions, corpus $(ls "$BUILD/corpus/$h" | wc -l) files"
    else
        echo "   CRASH in $h (log $log):"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 || tail -30 "$log"
        failed+=("$h")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
