// SPDX-License-Identifier: MIT
// The AVX2 k-quant dots built again with AVX-VNNI (-mavxvnni, kernel/CMakeLists.txt): the Q4_K/Q6_K register tiles
// accumulate madd + add as one vpdpwssd (the same exact int32 lane sums, so the same bits as the plain AVX2 build).
// find_dot_avx2 takes these when CPUID reports AVX-VNNI (qdot.cpp). kernel_bench (1 thread, m = 16, 2-core EPYC,
// shared): 8-10 % less time than the plain tiles at 1024x512 and 8192x512.
#define LOWBIT_QDOT_KQUANT_VNNI 1
#include "kernel/cpu/qdot/avx2/dot_kquant_avx2.cpp" // NOLINT(bugprone-suspicious-include): one source, two ISAs
