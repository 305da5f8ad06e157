#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `lowbit serve` under load (issue #13): a bounded loopback load test, then the same against llama-server.
#  1. The reference model quantized to Q4_K_M with `lowbit quantize` (or MODEL=path.gguf).
#  2. `lowbit serve -np NP` on an ephemeral port; a warm-up of WARMUP requests; RSS; the load: CLIENTS (64) concurrent
#     clients, REQUESTS (1000) requests of mixed prompt (4-200 words) and output (8-96 tokens) lengths, half streamed
#     (bench/serve_load.py: failures, p50/p99 TTFT and latency, aggregate generated tokens/s); RSS again (growth after
#     the warm-up is reported in %).
#  3. Streams: 1 client and 16 concurrent clients, all streamed, STREAM_TOKENS (128) tokens each, short prompts:
#     aggregate tokens/s of 16 streams / single-stream tokens/s (the continuous-batching gain).
#  4. The same (load with -np 8, streams with -np 16) against llama-server on the same GGUF when LLAMA_SERVER names
#     a binary or PEERS/lcpp-server-build/bin/llama-server exists (build it outside the repository from the
#     llama-cpp-python sdist as bench/cpu_vs_llamacpp.sh does, with -DLLAMA_BUILD_SERVER=ON, target llama-server).
# A benchmark script, not a test:  bench/serve_load.sh
# Env: LOWBIT (build/ci/lowbit or build/release/lowbit), MODEL, WORK (build/serve-load), THREADS (nproc), NP (16),
#      CLIENTS (64), REQUESTS (1000), WARMUP (100), STREAM_TOKENS (128), STREAM_REQS (32), LLAMA_SERVER, PEERS (../peers),
#      LLAMA_REQUESTS (REQUESTS; fewer when llama-server is too slow on a loaded machine), LLAMA_ARGS (extra flags)
set -euo pipefail
cd "$(dirname "$0")/.."

LOWBIT=${LOWBIT:-$( [ -x build/release/lowbit ] && echo build/release/lowbit || echo build/ci/lowbit)}
WORK=${WORK:-build/serve-load}
THREADS=${THREADS:-$(nproc)}
NP=${NP:-16}
CLIENTS=${CLIENTS:-64}
REQUESTS=${REQUESTS:-1000}
WARMUP=${WARMUP:-100}
LLAMA_REQUESTS=${LLAMA_REQUESTS:-$REQUESTS}
LLAMA_ARGS=${LLAMA_ARGS:-}
STREAM_TOKENS=${STREAM_TOKENS:-128}
STREAM_REQS=${STREAM_REQS:-32}
PEERS=${PEERS:-../peers}
LLAMA_SERVER=${LLAMA_SERVER:-$PEERS/lcpp-server-build/bin/llama-server}
mkdir -p "$WORK"
MODEL=${MODEL:-$WORK/ref-q4_k_m.gguf}
[ -f "$MODEL" ] || "$LOWBIT" quantize -m models/lowbit-ref-30m -o "$MODEL" --method q4_k_m --no-progress >/dev/null
LOAD="python3 bench/serve_load.py"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_url() { # $1 log file, $2 pid -> prints the URL once the server is ready
    for _ in $(seq 600); do
        if grep -qoE 'http://[0-9.]+:[0-9]+' "$1" 2>/dev/null; then grep -oE 'http://[0-9.]+:[0-9]+' "$1" | head -1; return 0; fi
        kill -0 "$2" 2>/dev/null || { echo "server exited: $(tail -5 "$1")" >&2; return 1; }
        sleep 0.2
    done
    return 1
}
wait_health() { for _ in $(seq 600); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.2; done; return 1; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }

# run_load NAME URL PID: warm-up, RSS, load, RSS, 1 stream, 16 streams; one summary line.
run_load() {
    local name=$1 url=$2 pid=$3 n=$4 np=$5
    # Warm-up: every slot once at the longest prompt + output of the mix (KV-cache pages become resident as rows are
    # written), then WARMUP requests of the mix itself.
    $LOAD "$url" --clients "$np" --requests $((2 * np)) --prompt-words 200 200 --min-tokens 96 --max-tokens 96 \
        --seed 98 >/dev/null
    $LOAD "$url" --clients "$CLIENTS" --requests "$WARMUP" --seed 99 >/dev/null
    local rss0; rss0=$(rss_kib "$pid")
    $LOAD "$url" --clients "$CLIENTS" --requests "$n" --seed 1 | tee "$WORK/$name.load.json"
    local rss1; rss1=$(rss_kib "$pid")
    echo "{\"rss_before_kib\": $rss0, \"rss_after_kib\": $rss1}" | tee "$WORK/$name.rss.json"
    awk -v a="$rss0" -v b="$rss1" -v n="$name" 'BEGIN {printf "%s RSS %.1f -> %.1f MiB (%+.2f %%)\n", n, a/1024, b/1024, 100*(b-a)/a}'
}
run_streams() {
    local name=$1 url=$2
    local s1 s16
    s1=$($LOAD "$url" --clients 1 --requests 4 --stream-share 1 --min-tokens "$STREAM_TOKENS" \
        --max-tokens "$STREAM_TOKENS" --prompt-words 4 8 --seed 5 | tee "$WORK/$name.s1.json" | field tokens_per_s)
    s16=$($LOAD "$url" --clients 16 --requests "$STREAM_REQS" --stream-share 1 --min-tokens "$STREAM_TOKENS" \
        --max-tokens "$STREAM_TOKENS" --prompt-words 4 8 --seed 5 | tee "$WORK/$name.s16.json" | field tokens_per_s)
    awk -v a="$s1" -v b="$s16" -v n="$name" \
        'BEGIN {printf "%s streams: 1 stream %.1f tok/s, 16 streams %.1f tok/s aggregate (%.2fx)\n", n, a, b, b/a}'
}

echo "== lowbit serve -np $NP ($MODEL, $THREADS threads)"
"$LOWBIT" serve -m "$MODEL" --port 0 -np "$NP" -t "$THREADS" --max-queue "$CLIENTS" >"$WORK/lowbit.out" 2>"$WORK/lowbit.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
url=$(wait_url "$WORK/lowbit.out" "$pid")
run_load lowbit "$url" "$pid" "$REQUESTS" "$NP"
run_streams lowbit "$url"
curl -s "$url/metrics" | grep -E '^lowbit_(requests|tokens_predicted|decode_steps|tokens_per)' || true
kill -TERM "$pid"
wait "$pid" && echo "lowbit serve exited 0 after SIGTERM"
"$LOWBIT" bench -m "$MODEL" -p 0 -n "$STREAM_TOKENS" -r 3 -t "$THREADS" 2>/dev/null | tail -3 || true

if [ -x "$LLAMA_SERVER" ]; then
    for np in 8 16; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        echo "== llama-server -np $np ($LLAMA_SERVER)"
        LD_LIBRARY_PATH=$(dirname "$LLAMA_SERVER")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$LLAMA_SERVER" -m "$MODEL" \
            --host 127.0.0.1 --port "$port" -np "$np" -c $((np * 1024)) -t "$THREADS" $LLAMA_ARGS >"$WORK/llama.$np.log" 2>&1 &
        lpid=$!
        trap 'kill $pid $lpid 2>/dev/null || true' EXIT
        wait_health "http://127.0.0.1:$port"
        if [ "$np" = 8 ]; then run_load llama-server-np8 "http://127.0.0.1:$port" "$lpid" "$LLAMA_REQUESTS" 8; fi
        if [ "$np" = 16 ]; then run_streams llama-server-np16 "http://127.0.0.1:$port"; fi
        kill -TERM "$lpid"; wait "$lpid" || true
    done
else
    echo "no llama-server (set LLAMA_SERVER or build $PEERS/lcpp-server-build): comparison skipped"
fi
