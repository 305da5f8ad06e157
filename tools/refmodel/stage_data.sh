#!/usr/bin/env bash
# Stage what the device run needs into .carry/ (git-ignored, carried to the device, <= 64 MiB in all).
#   .carry/data/wiki.txt.xz      the first WIKI_DOCS (12097) documents of wiki.txt (xz -9e; Python's
#                                stdlib lzma reads it on the device). The committed model's run carried a
#                                time-limited (truncated) xz stream of wiki.txt; train.py keeps its whole
#                                documents, which were exactly these first 12097 documents.
#   .carry/data/books.txt.xz     the first BOOKS_BYTES of books.txt, cut at a document boundary
#   .carry/data/wiki.test.raw.xz wikitext-2-raw test (evaluation only, never trained on)
#   .carry/tok/                  tokenizer from train_tokenizer.py
# Usage: tools/refmodel/stage_data.sh [BOOKS_BYTES] [WIKI_DOCS]   (run from the repo root; ~15 min on 2 cores)
set -euo pipefail
S=${LOWBIT_SHARED:-../shared}
C=$S/data/corpus
BOOKS_BYTES=${1:-56000000}
WIKI_DOCS=${2:-12097}
mkdir -p .carry/data
zstd -dc "$C/wiki.txt.zst" | python3 -c '
import sys
docs = sys.stdin.buffer.read().split(b"\n\n")
sys.stdout.buffer.write(b"\n\n".join(docs[:int(sys.argv[1])]) + b"\n")' "$WIKI_DOCS" | xz -9e -T1 -c > .carry/data/wiki.txt.xz
zstd -dc "$C/books.txt.zst" | head -c "$BOOKS_BYTES" | python3 -c '
import sys
d = sys.stdin.buffer.read()
i = d.rfind(b"\n\n")          # keep whole documents only
sys.stdout.buffer.write(d[:i + 1])' | xz -9e -T1 -c > .carry/data/books.txt.xz
xz -9e -c "$S/data/wikitext-2-raw/wiki.test.raw" > .carry/data/wiki.test.raw.xz
ls -l .carry/data
