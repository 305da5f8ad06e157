#!/usr/bin/env bash
# The test command (README): configure + build + run the default test suite (labels unit, e2e, oracle;
# not slow/gpu), then run each libFuzzer harness for a short budget.
# Shared data: export LOWBIT_SHARED=/path/to/shared (tests that need it skip with a message when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --workflow --preset ci
if [ -x scripts/fuzz.sh ]; then scripts/fuzz.sh "${LOWBIT_FUZZ_SECONDS:-20}"; fi
