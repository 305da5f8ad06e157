#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Stages .carry/call for tests/gpu/run_on_device.sh on this (CPU) machine, from a CUDA build made here:
#   cmake -S . -B build/cuda-dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOWBIT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
#   cmake --build build/cuda-dev --target lowbit lowbit_kernel_gputests lowbit_runtime_gputests make_synthetic_model \
#       gpu_matmul_bench
#   tests/gpu/stage_call.sh            (then call the device with carry [".carry/call"])
# Writes: dev.tar.xz (the binaries, stripped), libs.tar.xz (shared libraries the device image lacks: cpp-httplib,
# brotli, fmt, OpenBLAS and its Fortran runtime; the CUDA toolkit's, OpenSSL and zlib are on the image),
# model.tar.xz (models/lowbit-ref-30m), wiki.test.raw.xz ($LOWBIT_SHARED's wikitext-2 test text), pylibs.tar.xz
# (bitsandbytes, hqq and termcolor for the device's Python 3.12, from PyPI: the kernels phase's peers; skipped when
# pip cannot reach PyPI) and, with LCPP=1, llama.cpp.tar.xz (the llama-cpp-python sdist's llama.cpp without its
# models and docs, for the lcpp/bench phases). A device call sends the tracked and the untracked-not-ignored files
# plus the carried paths, 64 MiB at most, so the repository's own large files (the reference model) must stay
# behind: for the call, keep in the index only what run_on_device.sh reads (`git rm -r -q --cached . && git add -f
# tests/gpu bench/gpu_vs_llamacpp.sh bench/gpu_hf_peers.py bench/gpu_kernels.sh`) and ignore the rest (a `*` line
# in .git/info/exclude); afterwards `git reset -q` and drop that line. model.tar.xz carries the model instead.
# Env: BUILD (build/cuda-dev), LOWBIT_SHARED (../shared), PEERS (../peers: where the sdist is or is downloaded), LCPP.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/cuda-dev}
SHARED=${LOWBIT_SHARED:-../shared}
C=.carry/call
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$C" "$T/bin" "$T/libs" "$T/site"
for b in lowbit lowbit_kernel_gputests lowbit_runtime_gputests make_synthetic_model gpu_matmul_bench; do
    f=$(find "$BUILD" -name "$b" -type f -perm -u+x | head -1)
    [ -n "$f" ] || { echo "stage_call: $b not built in $BUILD" >&2; exit 1; }
    cp "$f" "$T/bin/" && strip "$T/bin/$b"
done
tar cJf "$C/dev.tar.xz" -C "$T" bin
ldd "$T/bin/lowbit" | awk '/=>/ {print $3}' |
    grep -v -E 'libc\.so|libm\.so|libstdc\+\+|libgcc_s|ld-linux|libpthread|libdl|librt|libcuda|libcudart|libcublas|libcusolver|libcusparse|libnvJitLink|libcrypto|libssl|libz\.so' |
    while read -r l; do cp -L "$l" "$T/libs/"; done
tar cJf "$C/libs.tar.xz" -C "$T/libs" .
[ -f "$C/model.tar.xz" ] || tar cJf "$C/model.tar.xz" models/lowbit-ref-30m
[ -f "$C/wiki.test.raw.xz" ] || xz -c "$SHARED/data/wikitext-2-raw/wiki.test.raw" >"$C/wiki.test.raw.xz"
if [ ! -f "$C/pylibs.tar.xz" ]; then
    w=$T/whl
    if python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 -d "$w" bitsandbytes==0.50.2 termcolor &&
        python3 -m pip download -q --no-deps -d "$w" hqq==0.2.8.post1; then
        python3 -m pip install -q --no-deps --no-compile --target "$T/site" "$w"/* >/dev/null
        find "$T/site/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name '*cuda130*' ! -name '*cpu*' -delete
        tar cJf "$C/pylibs.tar.xz" -C "$T" site
    else
        echo "stage_call: no PyPI: the kernels phase runs without the peer libraries" >&2
    fi
fi
if [ -n "${LCPP:-}" ] && [ ! -f "$C/llama.cpp.tar.xz" ]; then
    PEERS=${PEERS:-../peers}
    v=0.3.36
    [ -d "$PEERS/llama_cpp_python-$v" ] || {
        python3 -m pip download -q "llama-cpp-python==$v" --no-binary :all: --no-deps -d "$PEERS"
        tar xzf "$PEERS/llama_cpp_python-$v.tar.gz" -C "$PEERS"
    }
    tar cJf "$C/llama.cpp.tar.xz" -C "$PEERS/llama_cpp_python-$v/vendor" --exclude='llama.cpp/models' \
        --exclude='llama.cpp/docs' --exclude='llama.cpp/media' --exclude='llama.cpp/.git*' llama.cpp
fi
ls -la "$C"
du -sh "$C"
