// SPDX-License-Identifier: MIT
// Session: the LanguageModel contract on an in-memory model (errors, truncate, chunking) and clear errors for
// paths that are not (intact) models.
#include "core/test_support.h"
#include "kernel/cuda/cuda_backend.h"
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "runtime/session.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace lowbit::runtime {
namespace {

format::ModelConfig tiny_config() {
    format::ModelConfig c;
    c.arch = "llama";
    c.vocab_size = 50, c.hidden_size = 32, c.intermediate_size = 64, c.n_layers = 2;
    c.n_heads = 4, c.n_kv_heads = 2, c.max_position_embeddings = 64;
    return c;
}

std::unique_ptr<Session> tiny_session(SessionOptions o = {}) {
    auto store =
        model::make_synthetic_model(tiny_config(), model::kLlamaArch, model::SourceFormat::kHf, DType::kF32, 3);
    EXPECT_TRUE(store.ok());
    o.n_threads = 2;
    auto s = Session::from_store(*store, tiny_config(), model::SourceFormat::kHf, o);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return std::move(s).value();
}

std::vector<int32_t> tokens(int n) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back((i * 7 + 3) % 50);
    return t;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m;
}

TEST(Session, EvalContract) {
    auto s = tiny_session();
    EXPECT_EQ(s->n_ctx(), 64); // max_position_embeddings
    EXPECT_EQ(s->n_vocab(), 50);
    EXPECT_EQ(s->tokenizer(), nullptr);
    std::vector<float> logits;
    ASSERT_TRUE(s->eval(tokens(10), true, logits).ok());
    EXPECT_EQ(logits.size(), 10u * 50u);
    EXPECT_EQ(s->n_past(), 10);
    // Out-of-range ids, empty input and context overflow are usage errors and leave the cache as it was.
    const std::vector<int32_t> bad = {1, 50};
    auto st = s->eval(bad, false, logits);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kUsage);
    EXPECT_NE(st.error().message.find("token id 50"), std::string::npos) << st.error().message;
    EXPECT_EQ(s->eval(std::vector<int32_t>{-1}, false, logits).error().code, ErrorCode::kUsage);
    EXPECT_EQ(s->eval({}, false, logits).error().code, ErrorCode::kUsage);
    auto over = s->eval(tokens(55), false, logits);
    ASSERT_FALSE(over.ok());
    EXPECT_NE(over.error().message.find("exceed the context of 64"), std::string::npos) << over.error().message;
    EXPECT_EQ(s->n_past(), 10);
}

TEST(Session, TruncateThenReevalReproducesLogits) {
    auto s = tiny_session();
    const auto t = tokens(12);
    std::vector<float> first, again;
    ASSERT_TRUE(s->eval(t, true, first).ok());
    s->truncate(5);
    EXPECT_EQ(s->n_past(), 5);
    ASSERT_TRUE(s->eval(std::span(t).subspan(5), true, again).ok());
    EXPECT_LT(max_abs_diff(std::vector<float>(first.begin() + 5 * 50, first.end()), again), 1e-4);
    s->truncate(0);
    ASSERT_TRUE(s->eval(t, false, again).ok());
    EXPECT_LT(max_abs_diff(std::vector<float>(first.end() - 50, first.end()), again), 1e-4);
}

TEST(Session, SmallBatchesEqualOneChunk) {
    SessionOptions o;
    o.n_batch = 5;
    auto chunked = tiny_session(o), whole = tiny_session();
    const auto t = tokens(23);
    std::vector<float> a, b, la, lb;
    ASSERT_TRUE(chunked->eval(t, true, a).ok());
    ASSERT_TRUE(whole->eval(t, true, b).ok());
    EXPECT_LT(max_abs_diff(a, b), 1e-4);
    chunked->truncate(0);
    ASSERT_TRUE(chunked->eval(t, false, la).ok());
    EXPECT_EQ(la.size(), 50u);
    EXPECT_LT(max_abs_diff(la, std::vector<float>(b.end() - 50, b.end())), 1e-4);
}

class SessionOpenErrors : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::path(testing_support::temp_dir()) / "lowbit_session_open_errors";
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
    std::filesystem::path dir_;
};

TEST_F(SessionOpenErrors, MissingPathNotAModelAndCorruptFiles) {
    auto missing = Session::open((dir_ / "nope.gguf").string());
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("nope.gguf"), std::string::npos) << missing.error().message;

    auto empty_dir = Session::open(dir_.string());
    ASSERT_FALSE(empty_dir.ok());
    EXPECT_EQ(empty_dir.error().code, ErrorCode::kBadInput);
    EXPECT_NE(empty_dir.error().message.find("config.json"), std::string::npos) << empty_dir.error().message;

    write("config.json", "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": ");
    auto bad_json = Session::open(dir_.string());
    ASSERT_FALSE(bad_json.ok());
    EXPECT_EQ(bad_json.error().code, ErrorCode::kBadInput) << bad_json.error().message;

    write("not_a_model.gguf", "GGUF but not really");
    auto bad_gguf = Session::open((dir_ / "not_a_model.gguf").string());
    ASSERT_FALSE(bad_gguf.ok());
    EXPECT_NE(bad_gguf.error().message.find("not_a_model.gguf"), std::string::npos) << bad_gguf.error().message;
}

TEST_F(SessionOpenErrors, ConfigWithoutWeights) {
    write("config.json", R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 50,
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5})");
    auto s = Session::open(dir_.string());
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find(dir_.string()), std::string::npos) << s.error().message;
}

// --device: cuda without a usable GPU is an error (kUnsupported without CUDA in the build, kDevice without a
// device), never a silent CPU run; auto falls back to the CPU; the engine's f16-only cache is checked first.
TEST(SessionDevice, CudaErrorsAndAutoFallback) {
    const auto c = tiny_config();
    auto store = model::make_synthetic_model(c, model::kLlamaArch, model::SourceFormat::kHf, DType::kF32, 3);
    ASSERT_TRUE(store.ok());
    SessionOptions o;
    o.n_ctx = 32, o.device = Device::kCuda, o.cache_type = DType::kQ8_0;
    auto q8 = Session::from_store(*store, c, model::SourceFormat::kHf, o);
    ASSERT_FALSE(q8.ok());
    EXPECT_EQ(q8.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(q8.error().message.find("f16"), std::string::npos) << q8.error().message;
    o.cache_type = DType::kF16;
    const std::string why = kernel::cuda::cuda_unavailable_reason();
    if (!why.empty()) {
        auto s = Session::from_store(*store, c, model::SourceFormat::kHf, o);
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.error().code, kernel::cuda::compiled_with_cuda() ? ErrorCode::kDevice : ErrorCode::kUnsupported)
            << s.error().message;
        EXPECT_NE(s.error().message.find("CUDA"), std::string::npos) << s.error().message;
    }
    o.device = Device::kAuto;
    auto fallback = Session::from_store(*store, c, model::SourceFormat::kHf, o);
    ASSERT_TRUE(fallback.ok()) << fallback.error().message;
    EXPECT_EQ((*fallback)->on_gpu(), why.empty());
    EXPECT_EQ((*fallback)->backend_label(), why.empty() ? "CUDA" : "CPU");
}

TEST(SessionDevice, ParseDevice) {
    EXPECT_EQ(*parse_device("CUDA"), Device::kCuda);
    EXPECT_EQ(*parse_device("auto"), Device::kAuto);
    EXPECT_EQ(*parse_device("cpu"), Device::kCpu);
    auto bad = parse_device("gpu");
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kUsage);
    EXPECT_NE(bad.error().message.find("cpu, cuda, auto"), std::string::npos);
}

} // namespace
} // namespace lowbit::runtime
