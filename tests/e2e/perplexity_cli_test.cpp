// SPDX-License-Identifier: MIT
// `lowbit perplexity` end to end on seeded synthetic models (tests/fixtures/make_tiny_llama.py): running and
// final output, --json, --stride, the KL-divergence base round trip (a model against itself: KLD ~ 0 and
// top-1 100 %; against another seed: KLD > 0), and every bad input with its exit code and message.
// GCC 12 at -O3 reports a false -Wrestrict inside std::string operator+ as inlined in run_binary.h (GCC PR105329).
#pragma GCC diagnostic ignored "-Wrestrict"
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/run_binary.h"
// clang-format on

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

namespace lowbit::e2e {
namespace {

using nlohmann::json;

class PerplexityCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        // One directory per process: ctest runs each test as a process, possibly several at once.
        tmp_ = ::testing::TempDir() + "/lowbit_ppl_e2e_" + std::to_string(::getpid()) + "/";
        std::system(("mkdir -p " + shell_quote(tmp_)).c_str());
        if (std::system("python3 -c 'import numpy, tokenizers' >/dev/null 2>&1") != 0) return;
        made_ = true;
        const std::string script = shell_quote(std::string(LOWBIT_SOURCE_DIR) + "/tests/fixtures/make_tiny_llama.py");
        ok_ =
            std::system(("python3 " + script + " --out " + tmp_ + "m0 --tokenizer --seed 0 >/dev/null").c_str()) == 0 &&
            std::system(("python3 " + script + " --out " + tmp_ + "m1 --tokenizer --seed 1 >/dev/null").c_str()) == 0 &&
            std::system(("python3 " + script + " --out " + tmp_ + "v300 --tokenizer --vocab 300 >/dev/null").c_str()) ==
                0;
        std::string text;
        for (int i = 0; i < 40; ++i)
            text += "The quick brown fox jumps over the lazy dog. Quantization stores weights with fewer bits; the "
                    "scale of each block keeps the error small. Hello world! Numbers like " +
                    std::to_string(i * 37) + " appear.\n";
        std::ofstream(tmp_ + "text.txt") << text;
        std::ofstream(tmp_ + "other.txt") << "Completely different words. " + text;
        std::ofstream(tmp_ + "short.txt") << "Hello world.";
        std::ofstream(tmp_ + "empty.txt");
    }
    static void TearDownTestSuite() { std::system(("rm -rf " + shell_quote(tmp_)).c_str()); }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny models";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static std::string m(const std::string& name) { return tmp_ + name; }
    static inline std::string tmp_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(PerplexityCli, RunningOutputAndJsonAgree) {
    auto r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--chunks", "3", "-t", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("[1]", 0), 0u) << r.out;
    EXPECT_NE(r.out.find(",[3]"), std::string::npos);
    const size_t at = r.out.find("Final estimate: PPL = ");
    ASSERT_NE(at, std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" +/- ", at), std::string::npos);
    const double ppl_text = std::stod(r.out.substr(at + 22));

    auto j = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--chunks", "3", "--json"});
    ASSERT_EQ(j.exit_code, 0) << j.err;
    const json doc = json::parse(j.out);
    EXPECT_EQ(doc["n_chunks"], 3);
    EXPECT_EQ(doc["ctx"], 32);
    EXPECT_EQ(doc["n_tokens"], 3 * 15); // 32 - 1 - 16 scored per chunk
    EXPECT_EQ(doc["protocol"], "chunks");
    EXPECT_NEAR(doc["ppl"].get<double>(), ppl_text, 1e-4);
    EXPECT_GT(doc["stderr"].get<double>(), 0.0);
    EXPECT_GE(doc["seconds"].get<double>(), 0.0);

    auto s = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--stride", "16", "--json"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    const json sd = json::parse(s.out);
    EXPECT_EQ(sd["protocol"], "stride");
    EXPECT_EQ(sd["n_tokens"].get<int64_t>(), sd["n_text_tokens"].get<int64_t>() - 1); // all but the first
}

TEST_F(PerplexityCli, KlDivergenceAgainstItselfAndAnotherModel) {
    const std::string base = m("base.bin");
    auto w = run_lowbit(
        {"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--chunks", "8", "--kl-divergence-base", base});
    ASSERT_EQ(w.exit_code, 0) << w.err;
    auto self = run_lowbit({"perplexity", "-m", m("m0"), "--kl-divergence", "--kl-divergence-base", base, "--json"});
    ASSERT_EQ(self.exit_code, 0) << self.err;
    const json s = json::parse(self.out);
    EXPECT_EQ(s["n_tokens"], 8 * 15);
    EXPECT_NEAR(s["kld"]["value"].get<double>(), 0.0, 1e-4);
    EXPECT_DOUBLE_EQ(s["same_top_p_pct"]["value"].get<double>(), 100.0);
    EXPECT_NEAR(s["ppl_ratio"]["value"].get<double>(), 1.0, 1e-3);

    auto other =
        run_lowbit({"perplexity", "-m", m("m1"), "-f", m("text.txt"), "--kl-divergence", "--kl-divergence-base", base});
    ASSERT_EQ(other.exit_code, 0) << other.err;
    for (const char* line : {"Mean    KLD:", "99.0%   KLD:", "Median  KLD:", "RMS Δp    :", "Same top p:",
                             "Mean PPL(Q)/PPL(base)", "Mean ln(PPL(Q)/PPL(base))"})
        EXPECT_NE(other.out.find(line), std::string::npos) << line;
    auto oj = run_lowbit({"perplexity", "-m", m("m1"), "--kl-divergence", "--kl-divergence-base", base, "--json"});
    ASSERT_EQ(oj.exit_code, 0) << oj.err;
    EXPECT_GT(json::parse(oj.out)["kld"]["value"].get<double>(), 0.05);
}

TEST_F(PerplexityCli, KlDivergenceMismatchesAreClearErrors) {
    const std::string base = m("base2.bin");
    ASSERT_EQ(run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--chunks", "2",
                          "--kl-divergence-base", base})
                  .exit_code,
              0);
    auto r = run_lowbit({"perplexity", "-m", m("v300"), "--kl-divergence", "--kl-divergence-base", base});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("vocabulary of"), std::string::npos) << r.err;
    r = run_lowbit(
        {"perplexity", "-m", m("m1"), "-f", m("other.txt"), "--kl-divergence", "--kl-divergence-base", base});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("different text"), std::string::npos) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m1"), "-c", "64", "--kl-divergence", "--kl-divergence-base", base});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m1"), "--kl-divergence"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    std::ofstream(m("junk.bin")) << "not a base file at all, just some text";
    r = run_lowbit({"perplexity", "-m", m("m1"), "--kl-divergence", "--kl-divergence-base", m("junk.bin")});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("magic"), std::string::npos) << r.err;
}

TEST_F(PerplexityCli, BadTextInputs) {
    auto r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("empty.txt")});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("is empty"), std::string::npos) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("short.txt"), "-c", "32"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("you need at least 64 tokens"), std::string::npos) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("missing.txt")});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.signal, 0);
    EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m0")});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "--bogus"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--stride", "64"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "--chunks", "-5"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--chunks"), std::string::npos) << r.err;
}

// The default f16 KV cache against the exact f32 one: perplexity within 0.1 %.
TEST_F(PerplexityCli, F16CacheWithinATenthOfAPercentOfF32) {
    auto ppl_of = [&](const char* type) {
        const auto r =
            run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--json", "--cache-type", type});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        const auto at = r.out.find("\"ppl\":");
        EXPECT_NE(at, std::string::npos) << r.out;
        return at == std::string::npos ? 0.0 : std::stod(r.out.substr(at + 6));
    };
    const double f32 = ppl_of("f32"), f16 = ppl_of("f16");
    EXPECT_GT(f32, 1.0);
    EXPECT_LT(std::abs(f16 / f32 - 1), 1e-3) << f16 << " vs " << f32;
    // q8_0 rows need head_dim % 32 == 0; this model's is 16: a clear refusal (exit 4).
    const auto r = run_lowbit({"perplexity", "-m", m("m0"), "-f", m("text.txt"), "-c", "32", "--cache-type", "q8_0"});
    EXPECT_EQ(r.exit_code, 4) << r.err;
    EXPECT_NE(r.err.find("head_dim a multiple of 32"), std::string::npos) << r.err;
}

} // namespace
} // namespace lowbit::e2e
