// SPDX-License-Identifier: MIT
// e2e: `lowbit quantize` to GGUF on bad input: unknown method (2), Q2_K_S without imatrix (2), truncated GGUF
// (3), missing imatrix file (1), imatrix of another model or with wrong lengths (3). No output file is left.
#include "core/test_support.h"
#include "format/gguf/imatrix_file.h"

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

class QuantizeGgufErrors : public OutFileTest {
  protected:
    QuantizeGgufErrors() : OutFileTest("qg_err_") {}
};

TEST_F(QuantizeGgufErrors, UnknownMethodIsUsage) {
    expect_error({"quantize", "-m", tmp_ + "/x.gguf", "-o", out_, "--method", "q4_k_x"}, 2, "unknown method");
}

TEST_F(QuantizeGgufErrors, BadInputs) {
    LOWBIT_REQUIRE_SHARED(dir, "data/golden/llamacpp/");
    const std::string src = dir + "golden-F32.gguf";
    expect_error({"quantize", "-m", src, "-o", out_, "--method", "q2_k_s"}, 2, "importance matrix");

    // Truncated GGUF input.
    {
        std::ifstream in(src, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::ofstream(tmp_ + "/trunc.gguf", std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
    }
    expect_error({"quantize", "-m", tmp_ + "/trunc.gguf", "-o", out_, "--method", "q4_k_m"}, 3, "trunc");

    expect_error({"quantize", "-m", src, "-o", out_, "--method", "q4_k_m", "--imatrix", tmp_ + "/none.gguf"}, 1,
                 "none.gguf");

    // An imatrix of another model: no entry matches.
    gguf::ImatrixData other;
    other.datasets = {"x.txt"};
    other.chunk_count = 1;
    other.chunk_size = 8;
    other.entries["model.layers.0.mlp.up_proj.weight"] = {std::vector<float>(256, 1.0f), {8.0f}};
    ASSERT_TRUE(gguf::write_imatrix(tmp_ + "/other.gguf", other).ok());
    expect_error({"quantize", "-m", src, "-o", out_, "--method", "q4_k_m", "--imatrix", tmp_ + "/other.gguf"}, 3,
                 "no entry for any tensor");

    // The golden imatrix with one entry cut short: the error names the tensor.
    auto good = gguf::read_imatrix(dir + "golden-imatrix.gguf");
    ASSERT_TRUE(good.ok()) << good.error().message;
    gguf::ImatrixData bad = *good;
    bad.entries.at("blk.2.ffn_up.weight").in_sum2.resize(128);
    ASSERT_TRUE(gguf::write_imatrix(tmp_ + "/short.gguf", bad).ok());
    expect_error({"quantize", "-m", src, "-o", out_, "--method", "q4_k_m", "--imatrix", tmp_ + "/short.gguf"}, 3,
                 "blk.2.ffn_up.weight");

    // An entry missing for a quantized block weight.
    gguf::ImatrixData partial = *good;
    partial.entries.erase("blk.5.attn_v.weight");
    ASSERT_TRUE(gguf::write_imatrix(tmp_ + "/partial.gguf", partial).ok());
    expect_error({"quantize", "-m", src, "-o", out_, "--method", "q4_k_m", "--imatrix", tmp_ + "/partial.gguf"}, 3,
                 "blk.5.attn_v.weight");

    // Our writer round-trips the golden file: same entries, and Q2_K_S works with it.
    ASSERT_TRUE(gguf::write_imatrix(tmp_ + "/copy.gguf", *good).ok());
    auto copy = gguf::read_imatrix(tmp_ + "/copy.gguf");
    ASSERT_TRUE(copy.ok());
    EXPECT_EQ(copy->entries.size(), good->entries.size());
    EXPECT_EQ(copy->datasets, good->datasets);
    EXPECT_EQ(copy->entries.at("blk.0.attn_q.weight").in_sum2, good->entries.at("blk.0.attn_q.weight").in_sum2);
    const RunResult r =
        run_lowbit({"quantize", "-m", src, "-o", out_, "--method", "q2_k_s", "--imatrix", tmp_ + "/copy.gguf"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("q2_k"), std::string::npos) << r.out;
}

} // namespace
} // namespace lowbit::e2e
