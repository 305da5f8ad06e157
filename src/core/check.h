// SPDX-License-Identifier: MIT
// LOWBIT_CHECK: aborts with file:line on a broken *internal* invariant. Never use it for anything a user
// can cause (files, flags, requests): those return Result errors.
#pragma once

#include <cstdio>
#include <cstdlib>

#define LOWBIT_CHECK(cond)                                                                                             \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            std::fprintf(stderr, "lowbit: internal check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
            std::abort();                                                                                              \
        }                                                                                                              \
    } while (0)
