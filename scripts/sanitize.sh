#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ASan + UBSan run (issue #15): builds the CMake preset `asan` (-fsanitize=address,undefined, no recovery from
# undefined behaviour) and runs the ctest labels `unit` and `e2e` (not slow/gpu/oracle). The e2e tests spawn the
# sanitized `lowbit` binary, whose own exit code a test may expect to be 1, so a report must not hide behind an
# expected failure: every sanitizer report is written to build/asan/sanitizer-logs/ (log_path) and the run fails
# when any report exists there, whatever ctest said. Exit 0: clean; 1: a test failed or a sanitizer reported.
# Slow (a full instrumented build, tests ~3x slower): not part of scripts/test.sh; run it before resolving an issue.
# Usage: scripts/sanitize.sh [extra ctest arguments, e.g. -R Gguf]
#   LOWBIT_SANITIZE_JOBS=N  build and test parallelism (default 2)
set -euo pipefail
source "$(dirname "$0")/lib/shared_env.sh"
lowbit_resolve_shared # before the cd: a relative path is relative to the caller
cd "$(dirname "$0")/.."
JOBS="${LOWBIT_SANITIZE_JOBS:-2}"
BUILD=build/asan
LOGS="$PWD/$BUILD/sanitizer-logs"

cmake --preset asan >/dev/null
cmake --build --preset asan -j "$JOBS"

rm -rf "$LOGS"
mkdir -p "$LOGS"
# exitcode 86: a sanitized process that reports never exits with a code a test expects (0-4).
# allocator_may_return_null: huge requests fail like the real allocator (the binary reports "out of memory").
# OpenBLAS keeps its thread buffers until exit; leaks are checked (detect_leaks) and would be reported too.
export ASAN_OPTIONS="log_path=$LOGS/asan:exitcode=86:allocator_may_return_null=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="log_path=$LOGS/ubsan:exitcode=86:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="log_path=$LOGS/lsan:exitcode=86"

status=0
ctest --test-dir "$BUILD" -L 'unit|e2e' -LE 'slow|gpu' -j "$JOBS" --output-on-failure --timeout 1800 "$@" || status=1

reports=$(find "$LOGS" -type f | sort)
if [ -n "$reports" ]; then
    echo "sanitize.sh: sanitizer reports:" >&2
    for r in $reports; do
        echo "== $r" >&2
        head -40 "$r" >&2
    done
    status=1
fi
if [ "$status" -eq 0 ]; then
    echo "sanitize.sh: clean (labels unit|e2e under ASan + UBSan, no sanitizer report)"
fi
exit "$status"
