#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Sourced (never run) by the scripts README prints, before they `cd` to the repository root:
# makes a relative LOWBIT_SHARED (README's `LOWBIT_SHARED=../shared`) absolute against the caller's directory,
# because ctest runs every test in its own working directory where a relative path points nowhere.
# A set but missing directory is an error here, not 47 failed tests later.
lowbit_resolve_shared() {
    if [ -z "${LOWBIT_SHARED:-}" ]; then
        return 0
    fi
    case "$LOWBIT_SHARED" in
    /*) ;;
    *) LOWBIT_SHARED="$PWD/$LOWBIT_SHARED" ;;
    esac
    if [ ! -d "$LOWBIT_SHARED" ]; then
        echo "lowbit: error: LOWBIT_SHARED=$LOWBIT_SHARED is not a directory (unset it to skip the tests that need it)" >&2
        return 3
    fi
    LOWBIT_SHARED="$(cd "$LOWBIT_SHARED" && pwd)"
    export LOWBIT_SHARED
}
