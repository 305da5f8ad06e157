// SPDX-License-Identifier: MIT
#include "kernel/cuda/engine/f4_tables.h"

#include "core/dtype.h"
#include "kernel/cpu/qdot/qdot.h"
#include "scheme/nf4/nf4.h"

#include <algorithm>

namespace lowbit::kernel::cuda::engine {

void f4_code_tables(float (&t)[2][16], uint32_t (&c16)[2][8]) {
    const auto& nf4 = scheme::nf4::code_table(scheme::nf4::QuantType::kNf4);
    const auto& fp4 = scheme::nf4::code_table(scheme::nf4::QuantType::kFp4);
    std::copy(nf4.begin(), nf4.end(), t[0]);
    std::copy(fp4.begin(), fp4.end(), t[1]);
    const DType types[2] = {DType::kNF4x64, DType::kFP4x64};
    for (int k = 0; k < 2; ++k) {
        const int16_t* c = cpu::qdot::packed4_code16_table(types[k]);
        for (int w = 0; w < 8; ++w) c16[k][w] = 0;
        for (int i = 0; i < 16; ++i) {
            const auto u = uint16_t(c[i]); // 256 · (signed high byte) + (unsigned low byte)
            c16[k][i / 4] |= uint32_t(u & 0xFF) << (8 * (i % 4));
            c16[k][4 + i / 4] |= uint32_t(u >> 8) << (8 * (i % 4));
        }
    }
}

} // namespace lowbit::kernel::cuda::engine
