// SPDX-License-Identifier: MIT
// The CUDA engine behind Session (label gpu; skips without CUDA or a device): whole-model logits against the CPU
// reference (Backend::kRef: dequantize + f32, f16 KV cache as the engine's) on synthetic GQA models of every
// weight type the engine runs, for a prompt (GEMM path), single-token steps (GEMV path, CUDA graphs), several
// slots in one batch, and copy_prefix. Bounds, as max |gpu − cpu| / max |cpu| over the logits: 1e-3 for steps
// of <= 8 tokens (f32 math; only summation order and f16 cache rounding of the other side's K/V differ; 3e-2 where
// the GPU's GEMV takes 8-bit activations), 2e-2
// for prompts (activations rounded to f16 — bf16 for bf16 weights — in the tensor-core GEMMs).
#include "kernel/cuda/cuda_backend.h"
#include "kernel/cuda/engine/llama_gpu.h"
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/weights.h"
#include "runtime/session.h"
#include "scheme/llm_int8/llm_int8.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>

namespace lowbit::runtime {
namespace {

format::ModelConfig config() {
    format::ModelConfig c;
    c.arch = "llama";
    c.vocab_size = 300, c.hidden_size = 256, c.intermediate_size = 512, c.n_layers = 2;
    c.n_heads = 4, c.n_kv_heads = 2, c.max_position_embeddings = 256;
    return c;
}

// GGUF naming uses interleaved RoPE pairs, HF naming rotate-half: both pairings go through the engine.
std::unique_ptr<Session> session(DType dtype, Device device, int64_t n_seq = 1,
                                 model::SourceFormat src = model::SourceFormat::kGguf) {
    auto store = model::make_synthetic_model(config(), model::kLlamaArch, src, dtype, 11);
    EXPECT_TRUE(store.ok()) << store.error().message;
    SessionOptions o;
    o.n_threads = 4, o.n_ctx = 128, o.n_seq = n_seq, o.device = device, o.n_batch = 64;
    if (device == Device::kCpu) o.backend = kernel::Backend::kRef;
    auto s = Session::from_store(*store, config(), src, o);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(s).value() : nullptr;
}

double rel_max(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        if (!std::isfinite(got[i])) return INFINITY;
        num = std::max(num, std::abs(double(got[i]) - want[i]));
        den = std::max(den, std::abs(double(want[i])));
    }
    return num / den;
}

std::vector<int32_t> prompt(int n, int salt) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back((i * 37 + salt * 11 + 5) % 300);
    return t;
}

class GpuSession : public ::testing::TestWithParam<DType> {
  protected:
    void SetUp() override {
        if (const std::string why = kernel::cuda::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    }
};

TEST_P(GpuSession, LogitsMatchCpu) {
    const DType dt = GetParam();
    auto cpu = session(dt, Device::kCpu), gpu = session(dt, Device::kCuda);
    ASSERT_TRUE(cpu && gpu);
    ASSERT_TRUE(gpu->on_gpu());
    const double prompt_bound = dt == DType::kBF16 ? 4e-2 : 2e-2, step_bound = 1e-3;
    // A prompt of 40 tokens (GEMM path), every row's logits.
    std::vector<float> a, b;
    const auto p = prompt(40, 1);
    ASSERT_TRUE(cpu->eval(p, true, a).ok());
    ASSERT_TRUE(gpu->eval(p, true, b).ok());
    const double e_prompt = rel_max(b, a);
    // Then 12 single-token steps (GEMV + graphs) fed the CPU's greedy choice, so both see the same tokens.
    double e_step = 0;
    for (int i = 0; i < 12; ++i) {
        const int32_t next = int32_t(std::max_element(a.end() - 300, a.end()) - (a.end() - 300));
        ASSERT_TRUE(cpu->eval(std::vector<int32_t>{next}, false, a).ok());
        ASSERT_TRUE(gpu->eval(std::vector<int32_t>{next}, false, b).ok());
        e_step = std::max(e_step, rel_max(b, a));
    }
    std::printf("%-5s prompt rel err %.2e (bound %.0e), steps %.2e (bound %.0e)\n", std::string(dtype_name(dt)).c_str(),
                e_prompt, prompt_bound, e_step, step_bound);
    EXPECT_LE(e_prompt, prompt_bound);
    // Steps attend over the prompt's K/V, which went through the f16 GEMMs on the GPU: their error is the
    // prompt's, carried; the step bound applies to a GPU-only prompt of <= 8 tokens (next test).
    EXPECT_LE(e_step, prompt_bound);
    EXPECT_EQ(gpu->n_past(), 52);
}

TEST_P(GpuSession, ShortStepsMatchCpuTightly) {
    const DType dt = GetParam();
    // Where the GPU's GEMV takes 8-bit activations (its kernel is checked exactly against the CPU's activation
    // rounding in GpuMatmul), the two sides' inputs differ by float rounding (rsqrt, summation order), and an input
    // that sits within that difference of a rounding boundary quantizes one step apart: each such flip moves a dot
    // by a quantum, so two correct 8-bit paths differ by a few flips' worth, not by float rounding. The CPU's own
    // scalar and AVX2 levels differ the same way (greedy text on the reference model diverges between them).
    // Bound 3e-2 against the f32 reference. Measured on an H100 (2026-12-07): 6e-3…2.7e-2 against the CPU's qdot
    // levels; against the reference, the single steps after a prompt (LogitsMatchCpu) 1.2e-2…1.5e-2.
    const bool q8 = kernel::cuda::gpu_gemv_uses_q8_activations(dt);
    const double bound = q8 ? 3e-2 : 1e-3;
    auto cpu = session(dt, Device::kCpu, 1, model::SourceFormat::kHf);
    auto gpu = session(dt, Device::kCuda, 1, model::SourceFormat::kHf);
    ASSERT_TRUE(cpu && gpu);
    std::vector<float> a, b;
    double err = 0;
    for (int chunk = 0; chunk < 6; ++chunk) { // chunks of 1..6 tokens: GEMV for every step
        const auto p = prompt(chunk + 1, chunk);
        ASSERT_TRUE(cpu->eval(p, true, a).ok());
        ASSERT_TRUE(gpu->eval(p, true, b).ok());
        err = std::max(err, rel_max(b, a));
    }
    std::printf("%-5s GEMV-only steps rel err %.2e (bound %.0e%s)\n", std::string(dtype_name(dt)).c_str(), err, bound,
                q8 ? ", 8-bit activations" : "");
    EXPECT_LE(err, bound);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, GpuSession,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K,
                                           DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kI4Z, DType::kNF4x64,
                                           DType::kFP4x64),
                         [](const auto& p) { return std::string(dtype_name(p.param)); });

// LLM.int8 (bitsandbytes load_in_8bit): the synthetic model's decoder Linears as kI8 + SCB + the outlier threshold
// 6.0 (what the bitsandbytes loader stores), the rest f32. The CPU side is ref::matmul_int8_decomp; the GPU runs the
// same decomposition for every token count. Both quantize their own activations per token row, so an input that sits
// within float rounding of an int8 rounding boundary flips one step on one side (as for the 8-bit activation GEMVs
// above): bound 3e-2, for the prompt (multi-pass GEMV) and the steps.
TEST(GpuSessionInt8, LogitsMatchCpu) {
    if (const std::string why = kernel::cuda::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto store = model::make_synthetic_model(config(), model::kLlamaArch, model::SourceFormat::kHf, DType::kF32, 11);
    ASSERT_TRUE(store.ok()) << store.error().message;
    { // an outlier feature: embedding column 5 at 60 becomes ~sqrt(hidden) = 16 after RMSNorm, above the threshold
        auto e = (*store)->view("model.embed_tokens.weight");
        ASSERT_TRUE(e.ok());
        for (int64_t r = 0; r < config().vocab_size; ++r) e->as<float>()[r * config().hidden_size + 5] = 60.0f;
    }
    int n_int8 = 0;
    for (const format::TensorInfo& info : std::vector<format::TensorInfo>((*store)->tensors())) {
        const std::string& n = info.name;
        if (n.find(".layers.") == std::string::npos || info.shape.n_dims != 2) continue;
        const int64_t rows = info.shape.dims[0], cols = info.shape.dims[1];
        auto v = (*store)->view(n);
        ASSERT_TRUE(v.ok());
        auto q = scheme::llm_int8::quantize(v->as<float>(), rows, cols);
        ASSERT_TRUE(q.ok());
        std::vector<uint8_t> w(q->weight.size()), scb(q->scb.size() * sizeof(float));
        std::memcpy(w.data(), q->weight.data(), w.size());
        std::memcpy(scb.data(), q->scb.data(), scb.size());
        ASSERT_TRUE((*store)->add_raw(n, DType::kI8, info.shape, std::move(w)).ok());
        ASSERT_TRUE(
            (*store)->add_raw(n.substr(0, n.size() - 6) + "SCB", DType::kF32, Shape{rows}, std::move(scb)).ok());
        ++n_int8;
    }
    ASSERT_EQ(n_int8, 2 * 7);
    ASSERT_TRUE((*store)->add(model::kInt8ThresholdTensor, DType::kF32, Shape{1}, {6.0f}).ok());
    SessionOptions o;
    o.n_threads = 4, o.n_ctx = 128, o.n_batch = 64;
    o.backend = kernel::Backend::kRef;
    auto cpu = Session::from_store(*store, config(), model::SourceFormat::kHf, o);
    o.device = Device::kCuda;
    auto gpu = Session::from_store(*store, config(), model::SourceFormat::kHf, o);
    ASSERT_TRUE(cpu.ok()) << cpu.error().message;
    ASSERT_TRUE(gpu.ok()) << gpu.error().message;
    ASSERT_TRUE((*gpu)->on_gpu());
    std::vector<float> a, b;
    const auto p = prompt(40, 1);
    ASSERT_TRUE((*cpu)->eval(p, true, a).ok());
    ASSERT_TRUE((*gpu)->eval(p, true, b).ok());
    const double e_prompt = rel_max(b, a);
    double e_step = 0;
    for (int i = 0; i < 12; ++i) {
        const int32_t next = int32_t(std::max_element(a.end() - 300, a.end()) - (a.end() - 300));
        ASSERT_TRUE((*cpu)->eval(std::vector<int32_t>{next}, false, a).ok());
        ASSERT_TRUE((*gpu)->eval(std::vector<int32_t>{next}, false, b).ok());
        e_step = std::max(e_step, rel_max(b, a));
    }
    std::printf("i8    prompt rel err %.2e, steps %.2e (bound 3e-2)\n", e_prompt, e_step);
    EXPECT_LE(e_prompt, 3e-2);
    EXPECT_LE(e_step, 3e-2);
}

// Several slots in one step give each slot the logits it gets alone, and copy_prefix carries a prompt over.
TEST(GpuSessionSlots, BatchOfSlotsEqualsEachAlone) {
    if (const std::string why = kernel::cuda::cuda_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto multi = session(DType::kQ4_K, Device::kCuda, 3);
    ASSERT_TRUE(multi);
    // Prompts of different lengths for slots 0..2, each alone in its own single-slot session.
    std::vector<std::vector<float>> alone(3);
    std::vector<std::vector<int32_t>> prompts = {prompt(5, 1), prompt(3, 2), prompt(7, 3)};
    model::Batch batch;
    for (int s = 0; s < 3; ++s) {
        auto one = session(DType::kQ4_K, Device::kCuda);
        ASSERT_TRUE(one->eval(prompts[size_t(s)], false, alone[size_t(s)]).ok());
        for (size_t i = 0; i < prompts[size_t(s)].size(); ++i)
            batch.add(prompts[size_t(s)][i], int32_t(i), s, i + 1 == prompts[size_t(s)].size());
    }
    // 15 tokens in one step (two GEMV passes of 8 + 7), then a 2-token decode step (slots 1 and 2): graphs.
    std::vector<float> logits;
    ASSERT_TRUE(multi->decode(batch, logits).ok());
    ASSERT_EQ(logits.size(), size_t(3 * 300));
    for (int s = 0; s < 3; ++s) {
        std::vector<float> row(logits.begin() + s * 300, logits.begin() + (s + 1) * 300);
        EXPECT_LE(rel_max(row, alone[size_t(s)]), 1e-5) << "slot " << s;
        EXPECT_EQ(multi->kv_cache().seq_len(s), int64_t(prompts[size_t(s)].size()));
    }
    ASSERT_TRUE(multi->copy_prefix(2, 1, 7).ok()); // slot 1 now holds slot 2's prompt
    model::Batch step;
    step.add(9, 7, 1, true), step.add(9, 7, 2, true);
    ASSERT_TRUE(multi->decode(step, logits).ok());
    std::vector<float> r1(logits.begin(), logits.begin() + 300), r2(logits.begin() + 300, logits.end());
    EXPECT_EQ(r1, r2) << "a copied prefix must give the same next-token logits";
}

} // namespace
} // namespace lowbit::runtime
