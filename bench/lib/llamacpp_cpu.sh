# SPDX-License-Identifier: MIT
# Shared by the CPU benchmarks against llama.cpp (sourced, not run): llama.cpp for this CPU, built outside the
# repository in PEERS/lcpp-build from the source the llama-cpp-python sdist on PyPI carries.
#   llamacpp_cpu PEERS THREADS TARGET...   builds the TARGETs (llama-bench, llama-quantize, …) missing from
#   PEERS/lcpp-build/bin, then sets BIN to that folder and puts it on LD_LIBRARY_PATH.
LLAMA_CPP_PYTHON_VERSION=0.3.36
llamacpp_cpu() {
    local peers=$1 threads=$2 v=$LLAMA_CPP_PYTHON_VERSION t
    shift 2
    mkdir -p "$peers"
    peers=$(cd "$peers" && pwd)
    local missing=()
    for t in "$@"; do [ -x "$peers/lcpp-build/bin/$t" ] || missing+=("$t"); done
    if [ ${#missing[@]} -gt 0 ]; then
        [ -d "$peers/llama_cpp_python-$v" ] || {
            pip download "llama-cpp-python==$v" --no-binary :all: --no-deps -d "$peers"
            tar xzf "$peers/llama_cpp_python-$v.tar.gz" -C "$peers"
        }
        cmake -S "$peers/llama_cpp_python-$v/vendor/llama.cpp" -B "$peers/lcpp-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DGGML_NATIVE=ON >/dev/null
        cmake --build "$peers/lcpp-build" -j"$threads" --target "${missing[@]}"
    fi
    BIN=$peers/lcpp-build/bin
    export LD_LIBRARY_PATH=$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}
