// SPDX-License-Identifier: MIT
// Test tool: GPTQ of one raw f32 layer onto a GGUF grid (pipeline::gptq_gguf_linear, the job's per-linear hook),
// for tests/oracle/test_gptq_gguf_oracle.py to decode with the PyPI gguf package. Usage:
//   gptq_gguf_tool W.f32 N K X.f32 T TYPE OUT_PREFIX
// X [T, K] gives H = 2 XᵀX / T. Writes OUT_PREFIX.gguf_bytes (N rows of TYPE blocks) and OUT_PREFIX.deq.f32 [N, K].
#include "pipeline/quantize/gptq_gguf.h"
#include "quantize/gptq/gptq.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
template <class T> std::vector<T> read_raw(const std::string& path, size_t n) {
    std::vector<T> v(n);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f || std::fread(v.data(), sizeof(T), n, f) != n) {
        std::fprintf(stderr, "gptq_gguf_tool: cannot read %zu values from %s\n", n, path.c_str());
        std::exit(1);
    }
    std::fclose(f);
    return v;
}
template <class T> void write_raw(const std::string& path, const std::vector<T>& v) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(v.data(), sizeof(T), v.size(), f) != v.size()) std::exit(1);
    std::fclose(f);
}
} // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: gptq_gguf_tool W N K X T TYPE OUT_PREFIX\n");
        return 2;
    }
    using namespace lowbit;
    const int64_t n = std::atoll(argv[2]), k = std::atoll(argv[3]), t = std::atoll(argv[5]);
    const auto w = read_raw<float>(argv[1], static_cast<size_t>(n * k));
    const auto x = read_raw<float>(argv[4], static_cast<size_t>(t * k));
    const std::optional<DType> type = dtype_from_name(argv[6]);
    if (!type) {
        std::fprintf(stderr, "gptq_gguf_tool: unknown type %s\n", argv[6]);
        return 2;
    }
    quantize::gptq::HessianAccumulator acc(k);
    acc.add(x.data(), t);
    pipeline::GptqJobOptions opt;
    std::vector<float> deq;
    double loss = 0.0;
    auto bytes = pipeline::gptq_gguf_linear(*type, w, n, k, acc.finish(), opt, deq, loss);
    if (!bytes.ok()) {
        std::fprintf(stderr, "gptq_gguf_tool: %s\n", bytes.error().message.c_str());
        return 3;
    }
    const std::string out = argv[7];
    write_raw(out + ".gguf_bytes", *bytes);
    write_raw(out + ".deq.f32", deq);
    std::printf("loss %.6f\n", loss);
    return 0;
}
