// SPDX-License-Identifier: MIT
// compare's pure parts: method parsing (bad names fail first), the Pareto front, the report renderers.
#include "pipeline/compare/compare.h"

#include <gtest/gtest.h>

namespace lowbit::pipeline {
namespace {

CompareRow row(const std::string& m, double bpw, double kld, bool mix = false) {
    CompareRow r;
    r.method = m;
    r.bpw = bpw;
    r.kld = kld;
    r.is_mix = mix;
    return r;
}

TEST(Compare, ParetoFrontKeepsOnlyUndominatedRows) {
    const std::vector<CompareRow> rows = {row("a", 4.0, 0.10), row("b", 5.0, 0.05), row("c", 5.5, 0.08),
                                          row("d", 3.0, 0.50), row("e", 4.0, 0.20), row("f", 8.0, 0.001)};
    const std::vector<size_t> f = pareto_front(rows);
    EXPECT_EQ(f, (std::vector<size_t>{3, 0, 1, 5})); // d, a, b, f by bpw; c and e are dominated
}

TEST(Compare, ParsesMethodsAndRefusesBadOnesBeforeWork) {
    CompareOptions o;
    o.calib = "calib.txt";
    auto m = parse_compare_methods({"Q4_K_M", "q4_k_m+imatrix", "nf4", "hqq4", "gptq4", "mix@4.5", "mix@q4_k_m"}, o);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_EQ((*m)[0].quantize.method, "q4_k_m");
    EXPECT_TRUE((*m)[1].needs_imatrix);
    EXPECT_EQ((*m)[3].quantize.method, "hqq");
    EXPECT_EQ((*m)[3].quantize.bits, 4);
    EXPECT_EQ((*m)[4].quantize.calib, "calib.txt");
    EXPECT_DOUBLE_EQ((*m)[5].quantize.target_bpw, 4.5);
    EXPECT_TRUE((*m)[5].is_mix);
    EXPECT_EQ((*m)[6].size_of, "q4_k_m");
    EXPECT_FALSE((*m)[6].quantize.mix_gptq);
    // mixgptq@: the same mixes with GPTQ onto the chosen grids, calibrated on --calib.
    m = parse_compare_methods({"q4_k_m", "mixgptq@q4_k_m", "mixgptq@3.5"}, o);
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_TRUE((*m)[1].is_mix);
    EXPECT_TRUE((*m)[1].quantize.mix_gptq);
    EXPECT_EQ((*m)[1].quantize.calib, "calib.txt");
    EXPECT_EQ((*m)[1].size_of, "q4_k_m");
    EXPECT_DOUBLE_EQ((*m)[2].quantize.target_bpw, 3.5);

    const auto expect_usage = [&](const std::vector<std::string>& names, const CompareOptions& opts,
                                  const std::string& text) {
        auto r = parse_compare_methods(names, opts);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().code, ErrorCode::kUsage);
        EXPECT_NE(r.error().message.find(text), std::string::npos) << r.error().message;
    };
    expect_usage({"q4_k_m", "q4_k_x"}, o, "unknown method 'q4_k_x'");
    expect_usage({"q4_k_m", "Q4_K_M"}, o, "twice");
    expect_usage({"mix@q3_k_m"}, o, "needs METHOD ('q3_k_m') in --methods");
    expect_usage({"nf4+imatrix"}, o, "GGUF methods only");
    expect_usage({}, o, "--methods");
    CompareOptions none;
    expect_usage({"gptq4"}, none, "--calib");
    expect_usage({"mix@4"}, none, "importance matrix");
    CompareOptions imatrix_only;
    imatrix_only.imatrix = "imatrix.gguf";
    expect_usage({"mixgptq@4"}, imatrix_only, "needs calibration text");
    expect_usage({"q4_k_m", "mix@mixgptq@q4_k_m", "mixgptq@q4_k_m"}, o, "non-mix method");
    expect_usage({"q4_k_m+imatrix"}, none, "importance matrix");
}

TEST(Compare, MixesAtAMethodsSizeRunRightAfterIt) {
    CompareOptions o;
    o.imatrix = "imatrix.gguf";
    auto m = parse_compare_methods({"mix@q4_k_m", "q3_k_m", "mix@q3_k_m", "mix@4", "q4_k_m", "q8_0"}, o);
    ASSERT_TRUE(m.ok()) << m.error().message;
    std::vector<std::string> names;
    for (const CompareMethod& c : order_compare_methods(std::move(*m))) names.push_back(c.name);
    EXPECT_EQ(names, (std::vector<std::string>{"q3_k_m", "mix@q3_k_m", "mix@4", "q4_k_m", "mix@q4_k_m", "q8_0"}));
}

TEST(Compare, ReportsNameEveryMethodAndMarkTheFront) {
    CompareReport r;
    r.base_ppl = 59.7;
    r.n_chunks = 4;
    r.n_ctx = 512;
    r.n_tokens = 1020;
    r.rows = {row("q3_k_m", 4.19, 0.15), row("mix@4.5", 4.5, 0.03, true), row("q4_k_m", 5.03, 0.04),
              row("mix@5", 5.0, 0.02, true)};
    CompareOptions o;
    o.model = "m";
    o.eval_file = "wiki.test.raw";
    const std::string md = compare_markdown(r, o);
    EXPECT_NE(md.find("| mix@4.5 * |"), std::string::npos) << md;
    EXPECT_NE(md.find("| q4_k_m |"), std::string::npos) << md; // dominated by mix@5
    const std::string svg = compare_svg(r);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    for (const auto& x : r.rows) EXPECT_NE(svg.find(">" + x.method + "<"), std::string::npos) << x.method;
    EXPECT_NE(svg.find("Pareto front"), std::string::npos);
    EXPECT_NE(svg.find("stroke=\"#ff7f0e\" stroke-width=\"2\""), std::string::npos); // the mix line
    EXPECT_EQ(svg.find("mixgptq@"), std::string::npos);                              // no GPTQ-mix legend
    // GPTQ mixes: their own line and legend entry, apart from the plain mixes.
    r.rows.push_back(row("mixgptq@4.5", 4.5, 0.028, true));
    r.rows.push_back(row("mixgptq@5", 5.0, 0.018, true));
    const std::string svg2 = compare_svg(r);
    EXPECT_NE(svg2.find("stroke=\"#9467bd\" stroke-width=\"2\"/>"), std::string::npos);
    EXPECT_NE(svg2.find("(mixgptq@)</text>"), std::string::npos);
    EXPECT_NE(svg2.find("fill=\"#6b3fa0\">mixgptq@5<"), std::string::npos);
    const std::string js = compare_json(r, o);
    EXPECT_NE(js.find("\"pareto_front\""), std::string::npos);
}

} // namespace
} // namespace lowbit::pipeline
