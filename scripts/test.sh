#!/usr/bin/env bash
# The test command (README): configure + build + run the default test suite (labels unit, e2e, oracle;
# not slow/gpu), then run each libFuzzer harness for a short budget.
# Shared data: LOWBIT_SHARED=/path/to/shared, absolute or relative to the caller (tests that need it skip with a
# message when unset).
set -euo pipefail
source "$(dirname "$0")/lib/shared_env.sh"
lowbit_resolve_shared # before the cd: a relative path is relative to the caller
cd "$(dirname "$0")/.."
cmake --workflow --preset ci
if [ -x scripts/fuzz.sh ]; then scripts/fuzz.sh "${LOWBIT_FUZZ_SECONDS:-20}"; fi
