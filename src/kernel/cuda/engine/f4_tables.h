// SPDX-License-Identifier: MIT
// The bitsandbytes NF4 and FP4 code tables for the CUDA engine's decoders (host C++; gpu_ops.cu, compiled as
// C++17 CUDA, cannot include the scheme headers, so this file hands it the scheme's own tables).
#pragma once

namespace lowbit::kernel::cuda::engine {

// t[0] = NF4, t[1] = FP4 (scheme::nf4::code_table), 16 floats each.
void f4_code_tables(float (&t)[2][16]);

} // namespace lowbit::kernel::cuda::engine
