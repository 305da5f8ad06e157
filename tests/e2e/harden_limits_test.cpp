// SPDX-License-Identifier: MIT
// Issue #15 (hardening), through the binary: absurd counts in config.json and GGUF metadata are refused before anything
// is sized by them (class 1), as are a negative max_position_embeddings and a non-positive rope factor (class 4). Each
// case asserts the exit code and the message.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict" // run_binary.h's string concatenation, see gguf_bad_input_test.cpp
#endif

#include "e2e/harden_util.h"
#include "format/gguf/gguf_writer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <vector>

namespace lowbit::e2e {
namespace {

// Issue #15 class 1 and the config half of class 4: refused at parse time, before anything is sized by them.
TEST(Hardening, AbsurdOrNegativeConfigValuesAreRefused) {
    const std::string root = make_test_dir("harden_config");
    const std::string layers = bundled_with(root + "layers", "num_hidden_layers", json(uint64_t(1) << 62));
    for (const std::vector<std::string>& args : {std::vector<std::string>{"inspect", layers},
                                                 {"run", "-m", layers, "-p", "a", "-n", "1"},
                                                 {"convert", layers, "-o", root + "out.gguf"}})
        expect_error(run_lowbit(args), 3, "num_hidden_layers is 4611686018427387904, expected 1 to 4096");
    EXPECT_FALSE(fs::exists(root + "out.gguf"));

    // Within the bounds but more layers than the tensors hold: refused at binding, before sizing by the count.
    const std::string more = bundled_with(root + "more", "num_hidden_layers", json(100));
    expect_error(run_lowbit({"run", "-m", more, "-p", "a", "-n", "1"}), 3, "model config says 100 layers, but");
    expect_error(run_lowbit({"run", "-m", more, "-p", "a", "-n", "1"}), 3,
                 "has no tensor 'model.layers.99.self_attn.q_proj.weight' for layer 99");

    const std::string ctx = bundled_with(root + "ctx", "max_position_embeddings", json(-5));
    expect_error(run_lowbit({"convert", ctx, "-o", root + "ctx.gguf"}), 3,
                 "max_position_embeddings is -5, expected 0 to 4294967295");
    EXPECT_FALSE(fs::exists(root + "ctx.gguf"));

    const std::string rope =
        bundled_with(root + "rope", "rope_scaling", json::parse(R"({"rope_type":"linear","factor":0})"));
    expect_error(run_lowbit({"inspect", rope}), 3, "rope_scaling linear has factor 0, expected a positive number");
    remove_test_dir(root);
}

// Class 1, GGUF side: a block count of 2^62 is refused by quantize (before the mix sizes per-layer tables from it)
// and reported by inspect instead of being printed as the layer count.
TEST(Hardening, AbsurdGgufBlockCount) {
    const std::string dir = make_test_dir("harden_gguf_layers");
    gguf::Writer w;
    ASSERT_TRUE(w.set("general.architecture", gguf::Value::string("llama")).ok());
    ASSERT_TRUE(w.set("llama.block_count", gguf::Value::u64(uint64_t(1) << 62)).ok());
    ASSERT_TRUE(w.set("llama.embedding_length", gguf::Value::u32(64)).ok());
    ASSERT_TRUE(w.set("llama.feed_forward_length", gguf::Value::u32(128)).ok());
    ASSERT_TRUE(w.set("llama.attention.head_count", gguf::Value::u32(4)).ok());
    ASSERT_TRUE(w.add_tensor("token_embd.weight", DType::kF32, Shape{8, 64}, std::vector<uint8_t>(8 * 64 * 4)).ok());
    ASSERT_TRUE(w.write(dir + "in.gguf").ok());
    const RunResult q = run_lowbit({"quantize", "-m", dir + "in.gguf", "-o", dir + "out.gguf", "--method", "q4_0"});
    expect_error(q, 3, "4611686018427387904, expected 1 to 4096");
    EXPECT_NE(q.err.find("llama.block_count"), std::string::npos) << q.err;
    EXPECT_FALSE(fs::exists(dir + "out.gguf"));
    // inspect: bad values of a supported architecture are bad input (exit 3), as for an HF folder's config.json.
    const RunResult r = run_lowbit({"inspect", dir + "in.gguf"});
    expect_error(r, 3, "llama.block_count is 4611686018427387904, expected 1 to 4096");
    EXPECT_EQ(r.out.find("layers 4611686018427387904"), std::string::npos) << r.out;
    const RunResult j = run_lowbit({"inspect", dir + "in.gguf", "--json"});
    expect_error(j, 3, "llama.block_count is 4611686018427387904, expected 1 to 4096");
    EXPECT_TRUE(j.out.empty()) << j.out;

    // A GGUF of another architecture is not a model lowbit runs: inspect still shows it, saying why it has no config.
    gguf::Writer other;
    ASSERT_TRUE(other.set("general.architecture", gguf::Value::string("falcon")).ok());
    ASSERT_TRUE(other.set("falcon.block_count", gguf::Value::u64(uint64_t(1) << 62)).ok());
    ASSERT_TRUE(other.add_tensor("t", DType::kF32, Shape{2}, std::vector<uint8_t>(8)).ok());
    ASSERT_TRUE(other.write(dir + "falcon.gguf").ok());
    const RunResult o = run_lowbit({"inspect", dir + "falcon.gguf"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_NE(o.out.find("architecture 'falcon'; lowbit supports llama and qwen2"), std::string::npos) << o.out;
    remove_test_dir(dir);
}

// Class 1, flags: calibration sizes (--nsamples x --seqlen x hidden) are checked against physical memory before
// anything is allocated: exit 1 with the size, never bad_alloc or a length_error from a vector of 2^40 samples.
TEST(Hardening, AbsurdCalibrationSizeIsRefused) {
    const std::string model = std::string(LOWBIT_SOURCE_DIR) + "/models/lowbit-ref-30m";
    const std::string out = ::testing::TempDir() + "/lowbit_harden_calib_" + std::to_string(::getpid());
    for (const char* method : {"gptq", "awq"}) {
        SCOPED_TRACE(method);
        const RunResult r =
            run_lowbit({"quantize", "-m", model, "-o", out, "--method", method, "--calib", "random", "--nsamples",
                        "1099511627776", "--seqlen", "16", "--no-progress", "--device", "cpu"});
        expect_error(r, 1, "calibration needs at least ");
        EXPECT_NE(r.err.find("samples x 16 tokens"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("lower --nsamples or --seqlen"), std::string::npos) << r.err;
        EXPECT_FALSE(fs::exists(out));
    }
}

} // namespace
} // namespace lowbit::e2e
