#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One device call's worth of CUDA-engine work, from binaries built elsewhere and carried in .carry/call
# (tests/gpu/stage_call.sh stages it from a local CUDA build)
# (dev.tar.xz: lowbit, lowbit_kernel_gputests, lowbit_runtime_gputests, make_synthetic_model, gpu_matmul_bench,
# libfmt; libs/ or libs.tar.xz: shared libraries the device image lacks; model.tar.xz: models/lowbit-ref-30m;
# llama.cpp.tar.xz: the llama-cpp-python sdist's llama.cpp, trimmed;
# wiki.test.raw.xz; pylibs.tar.xz, optional: site-packages with bitsandbytes and hqq). PHASES (default "tests gemv engine bench") picks:
#   tests   the gpu-label test binaries (matmul parity per type for both GEMV variants, whole-model logits vs CPU)
#   gemv    tests/tools/gpu_matmul_bench for both GEMV variants (default: 8-bit activations where the type has them;
#           LOWBIT_GEMV=f32: f32 activations): µs and GB/s per type/shape
#   kernels bench/gpu_kernels.sh: issue 12's table (lowbit's HF layouts vs fp16 cuBLAS, torch int4, bitsandbytes,
#           hqq on the same shapes) with the target ratios
#   engine  tests/gpu/engine_check.sh on the reference model, cuda then cpu (host cores), then compare: greedy
#           text identical and perplexity within 0.1 % (ENGINE_TYPES: engine_check.sh's TYPES)
#   prep    bench/gpu_vs_llamacpp.sh PREP_ONLY=1 in the background: the synthetic 7B model's GGUFs and HF
#           directories in WORK (kept while the machine stays warm, so a next call can run `bench` alone)
#   lcpp    build llama.cpp CUDA in the background (also started by `bench`), waited for at the end
#   profile lowbit bench on the synthetic 7B Q4_0 with LOWBIT_GPU_PROFILE=1 (per-op device time)
#   ncu     ncu (Nsight Compute) over decode steps of the synthetic 7B Q4_0/Q8_0 (NCU_FILES): per kernel launches,
#           own duration and DRAM GB/s (tests/gpu/ncu_summary.py)
#   bench   bench/gpu_vs_llamacpp.sh (llama.cpp CUDA build + interleaved llama-bench vs lowbit bench)
# Results under OUT (default $OUT, as the device tool provides), one tarball per phase set (the tool returns few
# files). Usage: PHASES="tests gemv" tests/gpu/run_on_device.sh   (PDL_VARIANTS="1 0": the tests and the profile
# phase's bench also with LOWBIT_PDL=0)
set -uo pipefail
OUT=${OUT:-/tmp/out}
PHASES=${PHASES:-tests gemv kernels engine bench}
VARIANTS=${VARIANTS:-default f32} # LOWBIT_GEMV values for the tests and gemv phases
C=.carry/call
B=$PWD/.carry/bin
R=$OUT/r
mkdir -p "$R" "$B"
has() { [[ " $PHASES " == *" $1 "* ]]; }
trap 'tar czf "$OUT/results.tgz" -C "$OUT" r' EXIT # also when a timeout stops the call
log() { echo "[$(date +%T)] $*" | tee -a "$R/log.txt"; }
[ -x "$B/lowbit" ] || tar xJf $C/dev.tar.xz -C .carry
[ -d $C/libs ] && cp -n $C/libs/* "$B/" # shared libraries the device image lacks (cpp-httplib, brotli, openblas)
[ -f $C/libs.tar.xz ] && [ ! -f "$B/.libs" ] && tar xJf $C/libs.tar.xz -C "$B" && touch "$B/.libs" # the same, packed
export LD_LIBRARY_PATH=$B${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -f models/lowbit-ref-30m/config.json ] || xz -dc $C/model.tar.xz | tar xf -
[ -f .carry/wiki.test.raw ] || xz -dc $C/wiki.test.raw.xz >.carry/wiki.test.raw
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$R/gpu.txt"
"$B/lowbit" version | tee -a "$R/gpu.txt"

W=${WORK:-/tmp/lowbit-work} # outside the repo copy: the device tool does not keep it between calls
mkdir -p "$W"
[ -f $C/llama.cpp.tar.xz ] || export NO_LCPP=1 # lowbit-only bench when the call carries no llama.cpp source
if [ -z "${NO_LCPP:-}" ] && { has bench || has lcpp; } && [ ! -x "$W/lcpp-build/bin/llama-bench" ]; then # llama.cpp builds while the other phases run
    mkdir -p "$W/lcpp-src" && tar xJf $C/llama.cpp.tar.xz -C "$W/lcpp-src"
    (cmake -S "$W/lcpp-src/llama.cpp" -B "$W/lcpp-build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=ON &&
        nice cmake --build "$W/lcpp-build" -j"${LCPP_JOBS:-12}" --target llama-bench) >"$R/lcpp-build.log" 2>&1 &
    LCPP_PID=$!
fi
if has prep; then # the benchmark's model and quantized files, in the background while the other phases run
    (TYPES=${BENCH_TYPES:-q4_0 q4_k_m q8_0 f16} PREP_ONLY=1 OUT=$R/bench LOWBIT=$B/lowbit TOOLS=$B WORK=$W THREADS=8 bash bench/gpu_vs_llamacpp.sh \
        >"$R/prep.log" 2>&1) &
    PREP_PID=$!
fi
if [ -f $C/pylibs.tar.xz ]; then # PyPI peers the device image lacks (bitsandbytes, hqq), for the kernels phase
    [ -d .carry/site ] || tar xJf $C/pylibs.tar.xz -C .carry
    export PYTHONPATH=$PWD/.carry/site${PYTHONPATH:+:$PYTHONPATH}
fi
if has tests; then
    for v in $VARIANTS; do
        for p in ${PDL_VARIANTS:-1}; do # LOWBIT_PDL values (programmatic dependent launch on / off)
            for t in lowbit_kernel_gputests lowbit_runtime_gputests; do
                LOWBIT_PDL=$p LOWBIT_GEMV=$v timeout 300 "$B/$t" --gtest_brief=1 >"$R/$t-$v-pdl$p.txt" 2>&1
                log "$t ($v GEMV, PDL $p) exit $?: $(grep -c FAILED "$R/$t-$v-pdl$p.txt") FAILED lines"
            done
        done
    done
    # The opt-in LLM.int8 outlier-list path (LOWBIT_INT8_GEMV=list): the int8 tests of both binaries.
    for t in lowbit_kernel_gputests lowbit_runtime_gputests; do
        LOWBIT_INT8_GEMV=list timeout 300 "$B/$t" --gtest_brief=1 --gtest_filter='*Int8*' >"$R/$t-int8-list.txt" 2>&1
        log "$t (LOWBIT_INT8_GEMV=list, *Int8*) exit $?: $(grep -c FAILED "$R/$t-int8-list.txt") FAILED lines"
    done
    # The opt-in CPU-order GEMV (q8_0 / q4_0: the CPU qdot's bits, GpuEngine.Q8GemvHasCpuBits).
    LOWBIT_GEMV_ORDER=cpu timeout 300 "$B/lowbit_kernel_gputests" --gtest_brief=1 >"$R/lowbit_kernel_gputests-cpu-order.txt" 2>&1
    log "lowbit_kernel_gputests (LOWBIT_GEMV_ORDER=cpu) exit $?: $(grep -c FAILED "$R/lowbit_kernel_gputests-cpu-order.txt") FAILED lines"
fi
if has gemv; then
    for v in $VARIANTS; do
        LOWBIT_GEMV=$v "$B/gpu_matmul_bench" --types f16,q8_0,q4_0,q4_k,q5_k,q6_k,i4z,nf4x64,fp4x64 --m 1,2,4,8,16,256 \
            --shapes 4096x4096,11008x4096,4096x11008 >"$R/gemv-$v.txt" 2>&1
        log "gemv bench ($v) exit $?"
    done
    set -- $VARIANTS
    paste "$R/gemv-$1.txt" "$R/gemv-$2.txt" | awk -v a="$1" -v b="$2" '{printf "%-7s %-12s %4s  %s %9s us %7s GB/s | %s %9s us %7s GB/s\n", $1,$2,$3,a,$4,$5,b,$9,$10}' | tee "$R/gemv-both.txt"
fi
if has kernels; then # issue 12's table: lowbit's HF layouts and the PyPI libraries, same shapes, one run
    OUT=$R/kernels TOOLS=$B timeout 300 bash bench/gpu_kernels.sh 2>&1 | tee "$R/kernels.txt"
fi
if has engine; then
    for d in ${ENGINE_DEVICES:-cuda cpu}; do # the CPU side on the GPU machine's host cores, same binary and files
        TYPES=${ENGINE_TYPES:-f16 q8_0 q4_k_m rtn int8} QDIR=$W/engine-files WIKI=.carry/wiki.test.raw LOWBIT=$B/lowbit CHUNKS=${CHUNKS:-20} tests/gpu/engine_check.sh $d "$R/engine-$d" 2>&1 | sed "s/^/$d /" | tee -a "$R/log.txt"
    done
    [ -d "$R/engine-cpu" ] && tests/gpu/engine_check.sh compare "$R/engine-cpu" "$R/engine-cuda" 2>&1 | tee -a "$R/log.txt"
fi
if [ -n "${PREP_PID:-}" ]; then
    log "waiting for the benchmark files"
    wait "$PREP_PID"
    log "benchmark files: exit $?"
fi
if has profile; then
    if [ ! -f "$W/synth7b-q4_0.gguf" ]; then
        [ -f "$W/synth7b/config.json" ] || "$B/make_synthetic_model" "$W/synth7b" --tokenizer-from models/lowbit-ref-30m \
            --hidden 4096 --ff 11008 --layers 32 --heads 32 --kv-heads 32 --ctx 4096 --threads 16 >/dev/null
        "$B/lowbit" quantize -m "$W/synth7b" -o "$W/synth7b-q4_0.gguf" --method q4_0 --no-progress -t 16 >/dev/null
    fi
    for v in ${PROFILE_VARIANTS:-$VARIANTS}; do
        for p in ${PDL_VARIANTS:-1}; do
            LOWBIT_PDL=$p LOWBIT_GEMV=$v "$B/lowbit" bench -m "$W/synth7b-q4_0.gguf" --device cuda -p 512 -n 128 -r 3 2>&1 |
                tee "$R/bench-q4_0-$v-pdl$p.txt" | grep -E "pp512|tg128" | sed "s/^/GEMV $v PDL $p: /"
        done
    done
    LOWBIT_GPU_PROFILE=1 "$B/lowbit" bench -m "$W/synth7b-q4_0.gguf" --device cuda -p 0 -n 64 -r 1 >"$R/profile-q4_0.txt" 2>&1
    grep -A20 "GPU profile" "$R/profile-q4_0.txt"
fi
if has ncu; then # each decode kernel's own duration and DRAM traffic (ncu serialises them): the missed targets' profile
    for f in ${NCU_FILES:-q4_0 q8_0}; do
        [ -f "$W/synth7b-$f.gguf" ] || continue
        timeout 240 ncu --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
            --launch-skip ${NCU_SKIP:-1200} --launch-count ${NCU_COUNT:-580} \
            "$B/lowbit" bench -m "$W/synth7b-$f.gguf" --device cuda -p 0 -n 12 -r 1 >"$R/ncu-$f.csv" 2>"$R/ncu-$f.err"
        log "ncu $f exit $?"
        python3 tests/gpu/ncu_summary.py "$R/ncu-$f.csv" "$(awk -v c=${NCU_COUNT:-580} 'BEGIN{print c/290}')" 2>&1 | tee "$R/ncu-$f.txt"
    done
fi
if has bench; then
    export TYPES=${BENCH_TYPES:-q4_0 q4_k_m q8_0 f16}
    [ -n "${LCPP_PID:-}" ] && { log "waiting for the llama.cpp build"; wait "$LCPP_PID"; log "llama.cpp build exit $?"; }
    OUT=$R/bench LOWBIT=$B/lowbit TOOLS=$B LCPP_SRC=$C/llama.cpp.tar.xz WORK=$W bash bench/gpu_vs_llamacpp.sh 2>&1 | tee "$R/bench.txt"
fi
if [ -n "${LCPP_PID:-}" ] && has lcpp && ! has bench; then # a call that only starts the build waits for it
    log "waiting for the llama.cpp build"
    wait "$LCPP_PID"
    log "llama.cpp build exit $?"
fi
