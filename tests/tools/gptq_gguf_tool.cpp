// SPDX-License-Identifier: MIT
// Test tool: GPTQ of one raw f32 layer onto a GGUF grid (pipeline::gptq_gguf_linear, the job's per-linear hook),
// for tests/oracle/test_gptq_gguf_oracle.py to decode with the PyPI gguf package. Usage:
//   gptq_gguf_tool W.f32 N K X.f32 T TYPE OUT_PREFIX
// X [T, K] gives H = 2 XᵀX / T. Writes OUT_PREFIX.gguf_bytes (N rows of TYPE blocks) and OUT_PREFIX.deq.f32 [N, K].
#include "pipeline/quantize/gptq_gguf.h"
#include "quantize/gptq/gptq.h"
#include "raw_io.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
constexpr char kTool[] = "gptq_gguf_tool";
} // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: gptq_gguf_tool W N K X T TYPE OUT_PREFIX\n");
        return 2;
    }
    using namespace lowbit;
    const int64_t n = std::atoll(argv[2]), k = std::atoll(argv[3]), t = std::atoll(argv[5]);
    const auto w = lowbit::tools::read_raw<float>(kTool, argv[1], static_cast<size_t>(n * k));
    const auto x = lowbit::tools::read_raw<float>(kTool, argv[4], static_cast<size_t>(t * k));
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
    lowbit::tools::write_raw(kTool, out + ".gguf_bytes", *bytes);
    lowbit::tools::write_raw(kTool, out + ".deq.f32", deq);
    std::printf("loss %.6f\n", loss);
    return 0;
}
