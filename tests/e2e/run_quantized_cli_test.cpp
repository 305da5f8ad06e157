// SPDX-License-Identifier: MIT
// The whole HF-style loop through the binary: `lowbit quantize --method rtn|int8|nf4|fp4|hqq` on a tiny f32
// llama (tests/fixtures/make_tiny_llama.py), then `lowbit run` (greedy text) and `lowbit perplexity` on the
// result. Perplexity must stay near the f32 model's (4-bit within 25 %, int8 within 2 %) and 4-bit methods
// must actually change it.
// GCC 12 at -O3 reports a false -Wrestrict inside std::string operator+ as inlined in run_binary.h (GCC PR105329).
#pragma GCC diagnostic ignored "-Wrestrict"
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/tiny_model.h"
// clang-format on

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

namespace lowbit::e2e {
namespace {

class RunQuantizedCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tmp_ = make_test_dir("run_quantized_cli");
        if (!tiny_model_available()) return;
        made_ = true;
        ok_ = make_tiny_model(tmp_ + "f32", "--tokenizer --seed 4");
        std::string text;
        for (int i = 0; i < 30; ++i)
            text += "The quick brown fox jumps over the lazy dog. Hello world! The scale of each block keeps the "
                    "error small; numbers like " +
                    std::to_string(i * 29) + " appear.\n";
        std::ofstream(tmp_ + "text.txt") << text;
    }
    static void TearDownTestSuite() { remove_test_dir(tmp_); }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static double ppl(const std::string& dir) { return tiny_ppl(dir, tmp_ + "text.txt", 3); }
    static inline std::string tmp_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(RunQuantizedCli, QuantizeRunPerplexityEveryMethod) {
    const double base = ppl(tmp_ + "f32");
    ASSERT_GT(base, 1.0);
    struct Case {
        const char* method;
        std::vector<std::string> extra;
        double max_rel;
    };
    const std::vector<Case> cases = {{"rtn", {"--group-size", "32"}, 0.25},
                                     {"int8", {}, 0.02},
                                     {"nf4", {}, 0.25},
                                     {"fp4", {}, 0.25},
                                     {"hqq", {"--group-size", "32"}, 0.25}};
    for (const auto& c : cases) {
        const std::string out = tmp_ + c.method;
        std::vector<std::string> args = {"quantize", "-m",       tmp_ + "f32", "-o",
                                         out,        "--method", c.method,     "--no-progress"};
        args.insert(args.end(), c.extra.begin(), c.extra.end());
        auto q = run_lowbit(args);
        ASSERT_EQ(q.exit_code, 0) << c.method << ": " << q.err;
        auto r = run_lowbit(
            {"run", "-m", out, "-p", "Hello world", "-n", "8", "--temp", "0", "--no-display-prompt", "-t", "1"});
        EXPECT_EQ(r.exit_code, 0) << c.method << ": " << r.err;
        EXPECT_FALSE(r.out.empty()) << c.method;
        const double p = ppl(out);
        EXPECT_TRUE(std::isfinite(p)) << c.method;
        EXPECT_LT(std::fabs(p - base) / base, c.max_rel) << c.method << ": ppl " << p << " vs f32 " << base;
        if (std::string(c.method) != "int8") {
            EXPECT_NE(p, base) << c.method << ": nothing was quantized?";
        }
    }
}

} // namespace
} // namespace lowbit::e2e
