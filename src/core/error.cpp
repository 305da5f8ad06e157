// SPDX-License-Identifier: MIT
// Names and exit codes of ErrorCode.
#include "core/error.h"

namespace lowbit {

const char* error_code_name(ErrorCode code) {
    switch (code) {
    case ErrorCode::kInternal:
        return "internal";
    case ErrorCode::kUsage:
        return "usage";
    case ErrorCode::kBadInput:
        return "bad input";
    case ErrorCode::kUnsupported:
        return "unsupported";
    case ErrorCode::kIo:
        return "i/o";
    case ErrorCode::kOutOfMemory:
        return "out of memory";
    case ErrorCode::kDevice:
        return "device";
    }
    return "unknown";
}

int exit_code_for(ErrorCode code) {
    switch (code) {
    case ErrorCode::kUsage:
        return 2;
    case ErrorCode::kBadInput:
        return 3;
    case ErrorCode::kUnsupported:
        return 4;
    default:
        return 1;
    }
}

} // namespace lowbit
