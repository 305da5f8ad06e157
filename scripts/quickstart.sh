#!/usr/bin/env bash
# The main job on the bundled reference model (README): build the release binary, inspect the model,
# quantize it to GGUF Q4_K_M, generate from the quantized file, and (when LOWBIT_SHARED points at the
# shared data) compare wikitext-2 perplexity of the source and the quantized model.
set -euo pipefail
source "$(dirname "$0")/lib/shared_env.sh"
lowbit_resolve_shared # before the cd: a relative path is relative to the caller
cd "$(dirname "$0")/.."
cmake --workflow --preset release
B=build/release
M=models/lowbit-ref-30m
OUT=$B/lowbit-ref-30m-Q4_K_M.gguf
# Not `inspect | head`: with pipefail, head closing the pipe early can end the script with SIGPIPE (exit 141).
"$B/lowbit" inspect "$M" >"$B/inspect.txt"
head -n 24 "$B/inspect.txt"
"$B/lowbit" quantize -m "$M" -o "$OUT" --method q4_k_m
"$B/lowbit" run -m "$OUT" -p "The history of the city began" -n 64 --temp 0 --seed 1
WIKI="${LOWBIT_SHARED:-}/data/wikitext-2-raw/wiki.test.raw"
if [ -n "${LOWBIT_SHARED:-}" ] && [ -f "$WIKI" ]; then
  for m in "$M" "$OUT"; do
    echo "== perplexity of $m (wikitext-2 test, ctx 512, first 40 chunks)"
    "$B/lowbit" perplexity -m "$m" -f "$WIKI" -c 512 --chunks 40 | tail -n 1
  done
fi
