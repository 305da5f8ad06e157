// SPDX-License-Identifier: MIT
// Slot names and groups of calib_layer.h (shared by the CUDA and the stub builds).
#include "kernel/cuda/calib_layer.h"

namespace lowbit::kernel::cuda {

const char* slot_name(Slot s) {
    static const char* const kNames[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    return kNames[static_cast<int>(s)];
}

Slot first_slot_of_group(Slot s) {
    switch (s) {
    case Slot::kK:
    case Slot::kV:
        return Slot::kQ;
    case Slot::kUp:
        return Slot::kGate;
    default:
        return s;
    }
}

} // namespace lowbit::kernel::cuda
