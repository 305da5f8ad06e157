// SPDX-License-Identifier: MIT
// Test tool: runs lowbit's GPTQ on raw f32 files so tests/oracle/test_gptq_oracle.py can compare it with
// a numpy implementation. Usage:
//   gptq_tool W.f32 N K X.f32 T BITS GROUP SYM DESC_ACT STATIC OUT_PREFIX
// Writes OUT_PREFIX.codes.i32 [N,K], .deq.f32 [N,K], .gidx.i32 [K], .scales.f32 [N,G], .zeros.i32 [N,G].
#include "quantize/gptq/gptq.h"
#include "raw_io.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {
constexpr char kTool[] = "gptq_tool";
} // namespace

int main(int argc, char** argv) {
    if (argc != 12) {
        std::fprintf(stderr, "usage: gptq_tool W N K X T BITS GROUP SYM DESC_ACT STATIC OUT_PREFIX\n");
        return 2;
    }
    using namespace lowbit::quantize::gptq;
    const int64_t n = std::atoll(argv[2]), k = std::atoll(argv[3]), t = std::atoll(argv[5]);
    auto w = lowbit::tools::read_raw<float>(kTool, argv[1], size_t(n * k));
    auto x = lowbit::tools::read_raw<float>(kTool, argv[4], size_t(t * k));
    GptqOptions opt;
    opt.bits = std::atoi(argv[6]);
    opt.group_size = std::atoll(argv[7]);
    opt.sym = std::atoi(argv[8]) != 0;
    opt.desc_act = std::atoi(argv[9]) != 0;
    opt.static_groups = std::atoi(argv[10]) != 0;
    HessianAccumulator acc(k);
    acc.add(x.data(), t);
    auto r = gptq_quantize(w.data(), n, k, acc.finish(), opt);
    if (!r.ok()) {
        std::fprintf(stderr, "gptq_tool: %s\n", r.error().message.c_str());
        return 3;
    }
    const std::string out = argv[11];
    lowbit::tools::write_raw(kTool, out + ".codes.i32", r->codes);
    lowbit::tools::write_raw(kTool, out + ".deq.f32", r->dequant);
    lowbit::tools::write_raw(kTool, out + ".gidx.i32", r->g_idx);
    lowbit::tools::write_raw(kTool, out + ".scales.f32", r->scales);
    lowbit::tools::write_raw(kTool, out + ".zeros.i32", r->zeros);
    std::printf("loss %.6f damp %.6g\n", r->loss, r->damp_used);
    return 0;
}
