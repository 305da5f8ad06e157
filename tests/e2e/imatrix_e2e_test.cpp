// SPDX-License-Identifier: MIT
// e2e: `lowbit imatrix` on a tiny HF model (tests/fixtures/make_tiny_llama.py): the file has llama-imatrix's
// keys, GGUF tensor names and shapes (the same layout as the golden llama.cpp imatrix), reads back through
// format's reader, feeds `lowbit quantize --imatrix`; bad input -> documented exit codes.
#include "core/test_support.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/imatrix_file.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/run_binary.h"
#pragma GCC diagnostic pop

namespace lowbit::e2e {
namespace {

// hidden 256 / ff 512 so every linear can be a k-quant (rows of 256).
class ImatrixCli : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = ::testing::TempDir() + "/lowbit_imatrix_e2e_" + std::to_string(::getpid());
        if (std::system("python3 -c 'import numpy, tokenizers' >/dev/null 2>&1") != 0) return;
        const std::string cmd =
            "python3 " + shell_quote(std::string(LOWBIT_SOURCE_DIR) + "/tests/fixtures/make_tiny_llama.py") +
            " --out " + shell_quote(dir_ + "/model") +
            " --tokenizer --seed 3 --hidden 256 --ff 512 --heads 4 --kv-heads 2 --layers 2 >/dev/null";
        ok_ = std::system(cmd.c_str()) == 0;
        made_ = true;
        std::ofstream text(dir_ + "/calib.txt");
        for (int i = 0; i < 60; ++i)
            text << "The quick brown fox " << i << " jumps over the lazy dog; pack my box with five dozen jugs.\n";
    }
    static void TearDownTestSuite() {
        if (made_) std::filesystem::remove_all(dir_);
    }
    void SetUp() override {
        if (!made_) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static inline std::string dir_;
    static inline bool made_ = false, ok_ = false;
};

TEST_F(ImatrixCli, WritesLlamaCppLayoutAndQuantizesWithIt) {
    const std::string im = dir_ + "/im.gguf";
    auto r = run_lowbit({"imatrix", "-m", dir_ + "/model", "-f", dir_ + "/calib.txt", "-o", im, "-c", "64", "--chunks",
                         "3", "-b", "32", "-t", "2", "--no-progress"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("3 chunks of 64"), std::string::npos) << r.out;

    // Raw layout: the keys and value types of llama-imatrix, tensors sorted by name, [n_cols] and [1] f32.
    auto f = gguf::File::open(im);
    ASSERT_TRUE(f.ok()) << f.error().message;
    const gguf::File& g = **f;
    EXPECT_EQ(g.get_string("general.type"), "imatrix");
    ASSERT_NE(g.get_array("imatrix.datasets"), nullptr);
    EXPECT_EQ(g.get("imatrix.chunk_count")->type(), gguf::ValueType::kU32);
    EXPECT_EQ(g.get_int("imatrix.chunk_count"), 3);
    EXPECT_EQ(g.get_int("imatrix.chunk_size"), 64);
    // Entries sorted by weight name, each as <name>.in_sum2 followed by <name>.counts (as llama-imatrix).
    std::vector<std::string> names, stems;
    for (const auto& t : g.tensors()) names.push_back(t.name);
    for (size_t i = 0; i + 1 < names.size(); i += 2) {
        const std::string stem = names[i].substr(0, names[i].rfind(".in_sum2"));
        EXPECT_EQ(names[i], stem + ".in_sum2");
        EXPECT_EQ(names[i + 1], stem + ".counts");
        stems.push_back(stem);
    }
    EXPECT_TRUE(std::is_sorted(stems.begin(), stems.end()));
    ASSERT_EQ(names.size(), 2u * 7u * 2u); // 2 layers x 7 linears x (in_sum2, counts); no output.weight
    const auto* q = g.find("blk.1.attn_q.weight.in_sum2");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->shape, (Shape{256}));
    EXPECT_EQ(g.find("blk.0.ffn_down.weight.in_sum2")->shape, (Shape{512}));
    EXPECT_EQ(g.find("blk.0.ffn_down.weight.counts")->shape, (Shape{1}));

    // The same layout as llama.cpp's golden imatrix (keys and per-entry shapes).
    if (const char* shared = testing_support::shared_root()) {
        auto gold = gguf::File::open(std::string(shared) + "/data/golden/llamacpp/golden-imatrix.gguf");
        ASSERT_TRUE(gold.ok()) << gold.error().message;
        for (const auto& kv : (*gold)->kvs()) {
            ASSERT_NE(g.get(kv.key), nullptr) << kv.key;
            EXPECT_EQ(g.get(kv.key)->type(), kv.value.type()) << kv.key;
        }
        const auto* gq = (*gold)->find("blk.1.attn_q.weight.counts");
        ASSERT_NE(gq, nullptr);
        EXPECT_EQ(gq->shape, g.find("blk.1.attn_q.weight.counts")->shape);
        EXPECT_EQ((*gold)->find("blk.1.attn_q.weight.in_sum2")->shape.n_dims, q->shape.n_dims);
    }

    auto d = gguf::read_imatrix(im);
    ASSERT_TRUE(d.ok()) << d.error().message;
    EXPECT_EQ(d->entries.size(), 14u);
    const auto& e = d->entries.at("blk.0.attn_q.weight");
    EXPECT_EQ(e.counts, std::vector<float>{192.0f}); // 3 chunks x 64 tokens
    // q, k and v see the same input.
    EXPECT_EQ(e.in_sum2, d->entries.at("blk.0.attn_v.weight").in_sum2);
    for (float v : e.in_sum2) EXPECT_GT(v, 0.0f);

    const std::string out = dir_ + "/q4km.gguf";
    r = run_lowbit(
        {"quantize", "-m", dir_ + "/model", "-o", out, "--method", "q4_k_m", "--imatrix", im, "--no-progress"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto qf = gguf::File::open(out);
    ASSERT_TRUE(qf.ok()) << qf.error().message;
    EXPECT_EQ((*qf)->get_int("quantize.imatrix.entries_count"), 14);
    r = run_lowbit({"run", "-m", out, "-p", "The", "-n", "4", "--temp", "0", "-t", "1"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(ImatrixCli, BadInput) {
    // Text too short for 2 chunks of 512.
    auto r = run_lowbit({"imatrix", "-m", dir_ + "/model", "-f", dir_ + "/calib.txt", "-o", dir_ + "/x.gguf", "-c",
                         "4096", "--no-progress"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
    r = run_lowbit({"imatrix", "-m", dir_ + "/model", "-f", dir_ + "/missing.txt", "-o", dir_ + "/x.gguf"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
    std::ofstream(dir_ + "/tiny.txt") << "Hello.";
    r = run_lowbit({"imatrix", "-m", dir_ + "/model", "-f", dir_ + "/tiny.txt", "-o", dir_ + "/x.gguf", "-c", "64"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("at least 128"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/x.gguf"));
    r = run_lowbit({"imatrix", "-m", dir_ + "/nope", "-f", dir_ + "/calib.txt", "-o", dir_ + "/x.gguf"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.signal, 0);
}

} // namespace
} // namespace lowbit::e2e
