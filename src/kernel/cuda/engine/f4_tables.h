// SPDX-License-Identifier: MIT
// The bitsandbytes NF4 and FP4 code tables for the CUDA engine's decoders (host C++; gpu_ops.cu, compiled as
// C++17 CUDA, cannot include the scheme headers, so this file hands it the scheme's own tables).
#pragma once

#include <cstdint>

namespace lowbit::kernel::cuda::engine {

// t[0] = NF4, t[1] = FP4 (scheme::nf4::code_table), 16 floats each; c16: the same codes as the CPU qdot's int16
// (packed4_code16_table) in byte planes — per table words 0..3 the low bytes of codes 0..15, words 4..7 the high bytes.
void f4_code_tables(float (&t)[2][16], uint32_t (&c16)[2][8]);

} // namespace lowbit::kernel::cuda::engine
