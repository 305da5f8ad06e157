// SPDX-License-Identifier: MIT
// Test helper for the oracle scripts: quantizes or dequantizes raw row-major files through the scheme table.
//   ggml_quant_tool quantize   <type> <n_per_row> <in.f32> <out.bin> [importance.f32 with n_per_row floats]
//   ggml_quant_tool dequantize <type> <n_per_row> <in.bin> <out.f32>
// <type> is a ggml type name (q4_0, Q6_K, ...). Exit 0 on success, 2 on bad usage, 1 on I/O errors.
#include "core/dtype.h"
#include "scheme/scheme_list.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

bool read_all(const std::string& path, std::vector<char>& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return true;
}

bool write_all(const std::string& path, const void* data, size_t n) {
    std::ofstream f(path, std::ios::binary);
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    return static_cast<bool>(f);
}

int usage() {
    std::fprintf(stderr, "usage: ggml_quant_tool quantize|dequantize <type> <n_per_row> <in> <out> [importance.f32]\n");
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    using namespace lowbit;
    if (argc < 6) return usage();
    const std::string mode = argv[1];
    const auto dtype = dtype_from_name(argv[2]);
    const int64_t n_per_row = std::atoll(argv[3]);
    const scheme::SchemeTraits* s = dtype ? scheme::find_scheme(*dtype) : nullptr;
    if (!s || n_per_row <= 0) {
        std::fprintf(stderr, "ggml_quant_tool: unknown type '%s' or bad row length '%s'\n", argv[2], argv[3]);
        return 2;
    }
    const auto row_bytes = dtype_row_bytes(*dtype, static_cast<uint64_t>(n_per_row));
    if (!row_bytes) {
        std::fprintf(stderr, "ggml_quant_tool: row length %lld is not a multiple of %s's block\n",
                     static_cast<long long>(n_per_row), argv[2]);
        return 2;
    }
    std::vector<char> in;
    if (!read_all(argv[4], in)) {
        std::fprintf(stderr, "ggml_quant_tool: cannot read %s\n", argv[4]);
        return 1;
    }
    if (mode == "quantize") {
        if (!s->quantize_row) return usage();
        const size_t in_row = sizeof(float) * static_cast<size_t>(n_per_row);
        if (in.size() % in_row != 0) return usage();
        const size_t n_rows = in.size() / in_row;
        std::vector<char> imp_bytes;
        const float* importance = nullptr;
        if (argc > 6) {
            if (!read_all(argv[6], imp_bytes) || imp_bytes.size() != in_row) {
                std::fprintf(stderr, "ggml_quant_tool: importance file must hold %lld floats\n",
                             static_cast<long long>(n_per_row));
                return 1;
            }
            importance = reinterpret_cast<const float*>(imp_bytes.data());
        }
        std::vector<char> out(n_rows * *row_bytes);
        for (size_t r = 0; r < n_rows; ++r) {
            s->quantize_row(reinterpret_cast<const float*>(in.data() + r * in_row), out.data() + r * *row_bytes,
                            n_per_row, importance);
        }
        return write_all(argv[5], out.data(), out.size()) ? 0 : 1;
    }
    if (mode == "dequantize") {
        if (in.size() % *row_bytes != 0) return usage();
        const size_t n_rows = in.size() / *row_bytes;
        std::vector<float> out(n_rows * static_cast<size_t>(n_per_row));
        for (size_t r = 0; r < n_rows; ++r) {
            s->dequantize_row(in.data() + r * *row_bytes, out.data() + r * static_cast<size_t>(n_per_row), n_per_row);
        }
        return write_all(argv[5], out.data(), out.size() * sizeof(float)) ? 0 : 1;
    }
    return usage();
}
