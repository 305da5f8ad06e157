// SPDX-License-Identifier: MIT
// e2e: `quantize --method mix` (budget met, allocation printed, llama.cpp-loadable types, infeasible budgets
// refused with the range: exit 2) and `lowbit compare` (bad names fail before any work: exit 2; a tiny run writes
// report.md / report.json / pareto.svg and a rerun comes from the cache).
#include "core/test_support.h"
#include "format/gguf/gguf_file.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/out_file_fixture.h"
#include "e2e/run_binary.h"
#pragma GCC diagnostic pop

namespace lowbit::e2e {
namespace {

class MixCli : public OutFileTest {
  protected:
    MixCli() : OutFileTest("mix_cli_") {}
};

TEST_F(MixCli, RefusesBadBudgetsAndOptions) {
    LOWBIT_REQUIRE_SHARED(dir, "data/golden/llamacpp/");
    const std::string src = dir + "golden-F32.gguf";
    const std::vector<std::string> base = {"quantize", "-m", src, "-o", out_, "--method", "mix", "--no-progress"};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> a = base;
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    };
    expect_error(base, 2, "exactly one of --target-bpw");
    expect_error(with({"--target-bpw", "4", "--target-size", "3MiB"}), 2, "exactly one of --target-bpw");
    expect_error(with({"--target-bpw", "1.5"}), 2, "outside the feasible range");
    expect_error(with({"--target-bpw", "12"}), 2, "outside the feasible range");
    expect_error(with({"--target-size", "100KiB"}), 2, "outside the feasible range");
    expect_error(with({"--target-size", "lots"}), 2, "is not a size");
    expect_error(with({"--target-bpw", "4", "--types", "q4_k,q9_k"}), 2, "'q9_k' is not a GGUF block type");
    expect_error(with({"--target-bpw", "4", "--types", "q4_k,q4_k"}), 2, "listed twice");
    expect_error(with({"--target-bpw", "4", "--tensor-type", "attn_v=q8_0"}), 2, "--tensor-type does not apply");
    expect_error({"quantize", "-m", src, "-o", out_, "--method", "q4_k_m", "--target-bpw", "4"}, 2,
                 "apply to --method mix only");
    expect_error({"quantize", "-m", src, "-o", out_, "--method", "q4_k_m", "--tensor-type", "attn_v"}, 2,
                 "expected PATTERN=TYPE");
    // The message of a too-small budget gives the range for these types.
    const RunResult r = run_lowbit(with({"--target-bpw", "3", "--types", "q4_k,q6_k"}));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("types q4_k,q6_k"), std::string::npos) << r.err;
}

TEST_F(MixCli, MeetsTheBudgetAndPrintsTheAllocation) {
    LOWBIT_REQUIRE_SHARED(dir, "data/golden/llamacpp/");
    const std::string src = dir + "golden-F32.gguf";
    // bpw target: tensor bytes * 8 / params <= 4.5, and close to it.
    RunResult r = run_lowbit({"quantize", "-m", src, "-o", out_, "--method", "mix", "--target-bpw", "4.5", "--imatrix",
                              dir + "golden-imatrix.gguf", "--no-progress"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("mix allocation"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("blk.7"), std::string::npos) << r.out;
    const size_t at = r.out.find(" bpw, ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const double bpw = std::stod(r.out.substr(r.out.rfind(' ', at - 1) + 1));
    EXPECT_LE(bpw, 4.5);
    EXPECT_GT(bpw, 4.45);
    auto f = gguf::File::open(out_);
    ASSERT_TRUE(f.ok()) << f.error().message;
    // inspect prints the allocation per layer too (bpw and type counts of each layer's 2-D tensors).
    RunResult ins = run_lowbit({"inspect", out_});
    ASSERT_EQ(ins.exit_code, 0) << ins.err;
    const size_t by_layer = ins.out.find("bits per weight by layer");
    ASSERT_NE(by_layer, std::string::npos) << ins.out;
    EXPECT_NE(ins.out.find("  blk.7 ", by_layer), std::string::npos) << ins.out;
    EXPECT_NE(ins.out.find(" bpw  ", by_layer), std::string::npos) << ins.out;
    std::filesystem::remove(out_);
    // Size target: the whole file fits, within 1 % under it; the file of Q4_K_M's size.
    const uint64_t target = std::filesystem::file_size(dir + "golden-Q4_K_M.gguf");
    r = run_lowbit({"quantize", "-m", src, "-o", out_, "--method", "mix", "--target-size", std::to_string(target),
                    "--imatrix", dir + "golden-imatrix.gguf", "--no-progress"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const uint64_t size = std::filesystem::file_size(out_);
    EXPECT_LE(size, target);
    EXPECT_GT(double(size), 0.99 * double(target));
}

TEST_F(MixCli, CompareFailsBeforeWorkAndWritesReports) {
    LOWBIT_REQUIRE_SHARED(dir, "data/golden/llamacpp/");
    LOWBIT_REQUIRE_SHARED(wiki, "data/wikitext-2-raw/");
    const std::string src = dir + "golden-F32.gguf", cdir = tmp_ + "/cmp";
    const std::string text = wiki + "wiki.test.raw";
    RunResult r = run_lowbit({"compare", "-m", src, "-f", text, "--methods", "q8_0,q4_k_x", "-o", cdir});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("unknown method 'q4_k_x'"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(cdir));
    r = run_lowbit({"compare", "-m", src, "-f", text, "--methods", "q8_0,mix@4.5", "-o", cdir});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("importance matrix"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(cdir));

    const std::vector<std::string> run = {"compare",
                                          "-m",
                                          src,
                                          "-f",
                                          text,
                                          "--methods",
                                          "q8_0,q4_0,mix@q4_0",
                                          "--imatrix",
                                          dir + "golden-imatrix.gguf",
                                          "-c",
                                          "64",
                                          "--chunks",
                                          "2",
                                          "--tg",
                                          "4",
                                          "--repetitions",
                                          "1",
                                          "-o",
                                          cdir,
                                          "--no-progress"};
    r = run_lowbit(run);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* f : {"report.md", "report.json", "pareto.svg", "base.kld", "results/q8_0.json"})
        EXPECT_TRUE(std::filesystem::exists(cdir + "/" + f)) << f;
    const std::string md = slurp(cdir + "/report.md");
    for (const char* m : {"| q8_0", "| q4_0", "| mix@q4_0"}) EXPECT_NE(md.find(m), std::string::npos) << md;
    const std::string svg = slurp(cdir + "/pareto.svg");
    EXPECT_NE(svg.find(">mix@q4_0<"), std::string::npos);
    // mix@q4_0 is no larger than q4_0.
    const auto j = nlohmann::json::parse(slurp(cdir + "/report.json"));
    double q4 = 0, mix = 0;
    for (const auto& row : j["rows"]) {
        if (row["method"] == "q4_0") q4 = row["file_bytes"].get<double>();
        if (row["method"] == "mix@q4_0") mix = row["file_bytes"].get<double>();
    }
    EXPECT_GT(mix, 0);
    EXPECT_LE(mix, q4);
    // A rerun takes every method from the cache: no model is rewritten.
    const auto t0 = std::filesystem::last_write_time(cdir + "/models/q8_0.gguf");
    r = run_lowbit(run);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(std::filesystem::last_write_time(cdir + "/models/q8_0.gguf"), t0);
    EXPECT_EQ(slurp(cdir + "/report.md"), md);
}

} // namespace
} // namespace lowbit::e2e
