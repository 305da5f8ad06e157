// SPDX-License-Identifier: MIT
// `lowbit quantize --method mix --gptq` through the binary: a tiny model (hidden 256, so every k-quant block fits)
// mixed to a bpw budget with and without GPTQ from the same --calib text. The GPTQ file loads, has exactly the
// types of the plain mix (the allocation does not depend on the quantizer), differs in its bytes, and has no larger
// KLD to the f32 model than the plain mix on the calibration text (GPTQ minimises that layer-output error); misuse
// of --gptq is refused with a message and exit 2 before any work.
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/tiny_model.h"
// clang-format on

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace lowbit::e2e {
namespace {

class MixGptqCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        tmp_ = make_test_dir("mix_gptq_cli");
        if (!tiny_model_available()) return;
        made_ = true;
        // ctx 512: mix --calib computes its imatrix in chunks of 512 tokens, as llama-imatrix.
        ok_ = make_tiny_model(tmp_ + "f32", "--hidden 256 --ff 512 --ctx 512 --tokenizer --seed 14");
        std::string text;
        for (int i = 0; i < 240; ++i)
            text += "Mixed precision text for the budget; the quick brown fox " + std::to_string(i * 13) +
                    " jumps over the lazy dog while each tensor keeps its own grid.\n";
        std::ofstream(tmp_ + "text.txt") << text;
    }
    static void TearDownTestSuite() { remove_test_dir(tmp_); }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static RunResult mix(const std::string& out, std::vector<std::string> extra) {
        std::vector<std::string> args = {
            "quantize",        "-m",         tmp_ + "f32", "-o",       out,   "--method",      "mix", "--calib",
            tmp_ + "text.txt", "--nsamples", "4",          "--seqlen", "128", "--no-progress", "-t",  "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_lowbit(args);
    }
    // The report's per-type table (type, tensors, weights, bytes, bpw), without the totals and timing.
    static std::string type_rows(const std::string& report) { return report.substr(0, report.find("total:")); }
    static std::string slurp(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    }
    static inline std::string tmp_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(MixGptqCli, SameAllocationGptqBytesNoWorse) {
    const std::string plain = tmp_ + "plain.gguf", gptq = tmp_ + "gptq.gguf";
    const std::vector<std::string> budget = {"--target-bpw", "3.6", "--types", "q2_k,q3_k,q4_k,q5_k,q6_k"};
    const RunResult p = mix(plain, budget);
    ASSERT_EQ(p.exit_code, 0) << p.err;
    std::vector<std::string> with = budget;
    with.push_back("--gptq");
    const RunResult g = mix(gptq, with);
    ASSERT_EQ(g.exit_code, 0) << g.err;
    EXPECT_NE(g.err.find("linears onto GGUF grids"), std::string::npos) << g.err;
    EXPECT_NE(g.out.find("mix allocation"), std::string::npos) << g.out;
    // The budget chose the same types for both; a mix at 3.6 bpw uses more than one of them.
    EXPECT_EQ(type_rows(g.out), type_rows(p.out)) << "gptq:\n" << g.out << "plain:\n" << p.out;
    int n_types = 0;
    for (const char* t : {"q2_k ", "q3_k ", "q4_k ", "q5_k ", "q6_k "}) n_types += p.out.find(t) != std::string::npos;
    EXPECT_GE(n_types, 2) << p.out;
    EXPECT_EQ(std::filesystem::file_size(plain), std::filesystem::file_size(gptq));
    EXPECT_NE(slurp(plain), slurp(gptq)) << "GPTQ changed no byte";
    // KLD against the f32 model on the calibration text (the tiny model is random: its PPL is near the vocabulary
    // size and says little; its KLD does).
    const std::string base_kld = tmp_ + "base.kld";
    const RunResult b = run_lowbit({"perplexity", "-m", tmp_ + "f32", "-f", tmp_ + "text.txt", "-c", "64", "--chunks",
                                    "8", "--kl-divergence-base", base_kld, "-t", "2"});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    const auto kld = [&](const std::string& model) {
        const RunResult r = run_lowbit(
            {"perplexity", "-m", model, "--kl-divergence-base", base_kld, "--kl-divergence", "--json", "-t", "2"});
        EXPECT_EQ(r.exit_code, 0) << model << ": " << r.err;
        return r.exit_code == 0 ? nlohmann::json::parse(r.out)["kld"]["value"].get<double>() : -1.0;
    };
    const double kp = kld(plain), kg = kld(gptq);
    ASSERT_GT(kp, 0.0);
    ASSERT_GT(kg, 0.0);
    // Measured 0.0570 (gptq) vs 0.0580 (plain); a broken GPTQ (wrong grid, rows or permutation) is far worse.
    EXPECT_LT(kg, kp * 1.02) << "gptq mix KLD " << kg << " vs plain mix " << kp;
}

TEST_F(MixGptqCli, MisuseIsRefused) {
    const std::string out = tmp_ + "e.gguf";
    auto expect = [&](const RunResult& r, int code, const std::string& text) {
        EXPECT_EQ(r.exit_code, code) << r.err;
        EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
        EXPECT_FALSE(std::filesystem::exists(out));
    };
    // --gptq on a method other than mix.
    expect(run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", out, "--method", "q4_k_m", "--gptq"}), 2,
           "--gptq applies to --method mix");
    // mix --gptq without calibration text (an imatrix alone gives GPTQ no Hessians).
    expect(run_lowbit({"quantize", "-m", tmp_ + "f32", "-o", out, "--method", "mix", "--target-bpw", "4", "--gptq"}), 2,
           "mix --gptq needs calibration text");
    // --type is for gptq --format gguf; the budget chooses mix's types.
    expect(mix(out, {"--target-bpw", "4", "--gptq", "--type", "Q4_K_M"}), 2, "--type");
    // GGUF block types fix bits and grouping.
    expect(mix(out, {"--target-bpw", "4", "--gptq", "--bits", "4"}), 2, "does not apply to GGUF method");
}

} // namespace
} // namespace lowbit::e2e
