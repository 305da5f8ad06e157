// SPDX-License-Identifier: MIT
#include "kernel/cuda/engine/f4_tables.h"

#include "scheme/nf4/nf4.h"

#include <algorithm>

namespace lowbit::kernel::cuda::engine {

void f4_code_tables(float (&t)[2][16]) {
    const auto& nf4 = scheme::nf4::code_table(scheme::nf4::QuantType::kNf4);
    const auto& fp4 = scheme::nf4::code_table(scheme::nf4::QuantType::kFp4);
    std::copy(nf4.begin(), nf4.end(), t[0]);
    std::copy(fp4.begin(), fp4.end(), t[1]);
}

} // namespace lowbit::kernel::cuda::engine
