// SPDX-License-Identifier: MIT
// Raw binary arrays in and out of the oracle tools (the Python oracles write numpy .tofile() inputs and read the
// tools' outputs the same way). Header-only; a failure prints `tool: ...` and exits 1.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace lowbit::tools {

template <class T> std::vector<T> read_raw(const char* tool, const std::string& path, size_t n) {
    std::vector<T> v(n);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f || std::fread(v.data(), sizeof(T), n, f) != n) {
        std::fprintf(stderr, "%s: cannot read %zu values from %s\n", tool, n, path.c_str());
        std::exit(1);
    }
    std::fclose(f);
    return v;
}

template <class T> void write_raw(const char* tool, const std::string& path, const std::vector<T>& v) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(v.data(), sizeof(T), v.size(), f) != v.size()) {
        std::fprintf(stderr, "%s: cannot write %zu values to %s\n", tool, v.size(), path.c_str());
        std::exit(1);
    }
    std::fclose(f);
}

} // namespace lowbit::tools
