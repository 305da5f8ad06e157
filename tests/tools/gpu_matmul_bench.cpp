// SPDX-License-Identifier: MIT
// Kernel benchmark of the CUDA engine's matmuls: for each weight type and Llama-2-7B shape, the device time of
// y = x · Wᵀ at m tokens through the engine's path (GEMV passes for m <= 32, dequantize + cuBLAS above), in µs and
// in GB/s of weight bytes (file layout bytes / time: the roofline number at small m). Weights are random bytes of
// the type's block layout (the time does not depend on the values), so the run needs no model; i8 (LLM.int8) also
// gets row scales and activations with kInt8OutlierCols outlier columns (threshold 6.0).
// Usage: gpu_matmul_bench [--types f16,q8_0,q4_0,q4_k,q6_k] [--m 1,2,4,8,16,256] [--reps 50]
//        [--shapes 4096x4096,11008x4096,4096x11008]   (rows x cols = out x in)
// Prints one line per (type, shape, m); exit 4 without CUDA.
#include "core/dtype.h"
#include "kernel/cuda/engine/llama_gpu.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

// Outlier columns of the LLM.int8 rows' activations (LLM.int8's paper: a handful per layer at 7B).
constexpr int64_t kInt8OutlierCols = 8;

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

} // namespace

int main(int argc, char** argv) {
    using namespace lowbit;
    std::string types = "f16,q8_0,q4_0,q4_k,q6_k", ms = "1,2,4,8,16,256", shapes = "4096x4096,11008x4096,4096x11008";
    int reps = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--types")
            types = v;
        else if (k == "--m")
            ms = v;
        else if (k == "--shapes")
            shapes = v;
        else if (k == "--reps")
            reps = std::max(1, std::atoi(v.c_str()));
        else {
            std::fprintf(stderr, "gpu_matmul_bench: unknown option %s\n", k.c_str());
            return 2;
        }
    }
    std::mt19937 rng(7);
    std::printf("%-6s %-12s %5s %11s %9s\n", "type", "rows x cols", "m", "us", "GB/s");
    for (const std::string& tn : split(types)) {
        auto dt = dtype_from_name(tn);
        if (!dt) {
            std::fprintf(stderr, "gpu_matmul_bench: unknown type %s\n", tn.c_str());
            return 2;
        }
        for (const std::string& sh : split(shapes)) {
            const size_t x = sh.find('x');
            const int64_t rows = std::atoll(sh.substr(0, x).c_str()), cols = std::atoll(sh.substr(x + 1).c_str());
            const uint64_t row_bytes = uint64_t(cols / dtype_block_elems(*dt)) * uint64_t(dtype_block_bytes(*dt));
            std::vector<uint8_t> w(row_bytes * uint64_t(rows));
            for (auto& b : w) b = uint8_t(rng());
            if (*dt == DType::kF16 || *dt == DType::kBF16) // finite values (time is the same; tidier output)
                for (size_t i = 1; i < w.size(); i += 2) w[i] &= 0x3B;
            kernel::cuda::GpuWeight g;
            g.data = w.data(), g.dtype = *dt, g.n_rows = rows, g.n_cols = cols, g.row_bytes = row_bytes;
            // LLM.int8 (i8): row scales, bitsandbytes' threshold 6.0, and activations with outlier columns.
            std::vector<float> scb(*dt == DType::kI8 ? size_t(rows) : 0, 0.02f);
            if (*dt == DType::kI8) g.row_scale = scb.data(), g.outlier_threshold = 6.0f;
            for (const std::string& mstr : split(ms)) {
                const int64_t m = std::atoll(mstr.c_str());
                std::vector<float> act;
                if (*dt == DType::kI8) {
                    std::normal_distribution<float> nd(0.0f, 1.0f);
                    act.resize(size_t(m * cols));
                    for (auto& v : act) v = std::clamp(nd(rng), -5.0f, 5.0f);
                    for (int64_t c = 0; c < cols; c += cols / kInt8OutlierCols) act[size_t(c)] = 8.0f;
                }
                auto us = kernel::cuda::gpu_matmul_time_us(g, m, reps, false, act.empty() ? nullptr : act.data());
                if (!us.ok()) {
                    std::fprintf(stderr, "gpu_matmul_bench: %s\n", us.error().message.c_str());
                    return us.error().code == ErrorCode::kUnsupported ? 4 : 1;
                }
                std::printf("%-6s %-12s %5lld %11.2f %9.1f\n", tn.c_str(), sh.c_str(), static_cast<long long>(m), *us,
                            double(w.size()) / (*us * 1e3));
                std::fflush(stdout);
            }
        }
    }
    return 0;
}
