// SPDX-License-Identifier: MIT
// AWQ GEMM export on a seeded in-memory model (Linear weights quantized with AutoAWQ's RTN formula): the written
// directory reads back through the loader table to the scheme's dequantized weights, replaced tensors are
// written in the source dtype, other tensors are copied bit for bit, both configs carry AutoAWQ's / transformers'
// keys, and bad requests are refused.
#include "core/half.h"
#include "format/safetensors/safetensors_reader.h"
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/quantized/quant_loader.h"
#include "model/quantized/repack.h"
#include "pipeline/quantize/awq_export.h"
#include "pipeline/quantize/calib_testing.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;
using scheme::awq::AwqLinear;

format::ModelConfig tiny_config() {
    return calib_testing::tiny_llama_config(64, 128, 2);
}

// AutoAWQ's pseudo_quantize_tensor (zero_point): scale = (max - min) / 15 (>= 1e-5), zero = clamp(-round(min /
// scale), 0, 15), q = clamp(round(w / scale) + zero, 0, 15), per group of g inputs.
AwqLinear awq_rtn(const float* w, int64_t n_out, int64_t n_in, int64_t g) {
    AwqLinear l;
    l.n_out = n_out, l.n_in = n_in, l.group_size = g;
    l.codes.resize(size_t(n_out * n_in));
    for (int64_t n = 0; n < n_out; ++n)
        for (int64_t k0 = 0; k0 < n_in; k0 += g) {
            const float* row = w + n * n_in + k0;
            const float lo = *std::min_element(row, row + g), hi = *std::max_element(row, row + g);
            const float scale = std::max((hi - lo) / 15.0f, 1e-5f);
            const int zero = std::clamp(-int(std::nearbyint(lo / scale)), 0, 15);
            l.scales.push_back(scale), l.zeros.push_back(zero);
            for (int64_t j = 0; j < g; ++j)
                l.codes[size_t(n * n_in + k0 + j)] = std::clamp(int(std::nearbyint(row[j] / scale)) + zero, 0, 15);
        }
    return l;
}

std::string read_text(const fs::path& p) {
    std::ifstream f(p);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class AwqExport : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("lowbit_awq_export_" + std::to_string(getpid()));
        fs::create_directories(dir_ / "src");
        std::ofstream(dir_ / "src" / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64})";
        std::ofstream(dir_ / "src" / "tokenizer.json") << "{}";
        auto s = model::make_synthetic_model(c_, *model::find_arch("llama"), model::SourceFormat::kHf, DType::kBF16, 5);
        ASSERT_TRUE(s.ok()) << s.error().message;
        store_ = *s;
        // A bf16 norm, as in real checkpoints, to see replacements written in the source dtype.
        ASSERT_TRUE(store_->add(kNorm, DType::kBF16, Shape{64}, std::vector<float>(64, 1.0f)).ok());
        for (const auto& info : store_->tensors()) {
            if (info.name.find("_proj.weight") == std::string::npos) continue;
            auto v = store_->view(info.name);
            ASSERT_TRUE(v.ok());
            std::vector<float> w(size_t(info.shape.n_elems()));
            const auto* b = static_cast<const uint16_t*>(v->data);
            for (size_t i = 0; i < w.size(); ++i) w[i] = bf16_to_f32(b[i]);
            linears_[info.name.substr(0, info.name.size() - 7)] = awq_rtn(w.data(), info.shape[0], info.shape[1], 32);
        }
        opt_.group_size = 32;
        opt_.calib.source = "calib.txt", opt_.calib.n_samples = 4, opt_.calib.seqlen = 16;
    }
    void TearDown() override { fs::remove_all(dir_); }
    Status write(const std::map<std::string, std::vector<float>>& replaced, const AwqExportOptions& o) {
        report_ = {};
        return write_awq_checkpoint((dir_ / "out").string(), (dir_ / "src").string(), *store_, linears_, replaced, o,
                                    report_);
    }

    static constexpr const char* kNorm = "model.layers.0.input_layernorm.weight";
    format::ModelConfig c_ = tiny_config();
    fs::path dir_;
    std::shared_ptr<model::MemoryStore> store_;
    std::map<std::string, AwqLinear> linears_;
    AwqExportOptions opt_;
    QuantizeJobReport report_;
};

TEST_F(AwqExport, DirectoryLoadsBackToTheDequantizedLinears) {
    std::vector<float> folded(64);
    for (int i = 0; i < 64; ++i) folded[size_t(i)] = 0.5f + 0.01f * float(i);
    ASSERT_TRUE(write({{kNorm, folded}}, opt_).ok());
    auto st = safetensors::Store::open((dir_ / "out" / "model.safetensors").string());
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ((*st)->find("model.layers.0.self_attn.q_proj.weight"), nullptr);
    // Copied bit for bit; replaced in bf16.
    for (const char* name : {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"}) {
        auto a = store_->view(name), b = (*st)->view(name);
        ASSERT_TRUE(a.ok() && b.ok()) << name;
        ASSERT_EQ(a->n_bytes(), b->n_bytes());
        EXPECT_EQ(std::memcmp(a->data, b->data, a->n_bytes()), 0) << name;
    }
    auto norm = (*st)->view(kNorm);
    ASSERT_TRUE(norm.ok());
    EXPECT_EQ(norm->dtype, DType::kBF16);
    for (int i = 0; i < 64; ++i)
        EXPECT_EQ(static_cast<const uint16_t*>(norm->data)[i], f32_to_bf16(folded[size_t(i)])) << i;
    // Through the loader table (quant_method "awq"): the weights are the scheme's dequantization.
    std::shared_ptr<const format::TensorStore> base(std::move(*st));
    auto q = model::quantized::wrap_quantized_dir(base, (dir_ / "out").string(), c_);
    ASSERT_TRUE(q.ok()) << q.error().message;
    for (const auto& [m, lin] : linears_) {
        EXPECT_EQ(base->find(m + ".qweight")->shape, (Shape{lin.n_in, lin.n_out / 8})) << m;
        auto v = (*q)->view(m + ".weight");
        ASSERT_TRUE(v.ok()) << m;
        AwqLinear f16 = lin;
        for (auto& s : f16.scales) s = f16_to_f32(f32_to_f16(s));
        const auto want = scheme::awq::dequantize(f16);
        EXPECT_EQ(model::quantized::dense_weight(*v), want) << m; // kept packed (kI4Z), bit-exact
    }
    // Configs: transformers' AwqConfig keys in config.json, AutoAWQ's in quant_config.json.
    const auto cfg = nlohmann::json::parse(read_text(dir_ / "out" / "config.json"));
    EXPECT_EQ(cfg["hidden_size"], 64);
    const auto& qc = cfg["quantization_config"];
    EXPECT_EQ(qc["quant_method"], "awq");
    EXPECT_EQ(qc["bits"], 4);
    EXPECT_EQ(qc["group_size"], 32);
    EXPECT_EQ(qc["zero_point"], true);
    EXPECT_EQ(qc["version"], "gemm");
    EXPECT_TRUE(qc.contains("modules_to_not_convert") && qc["modules_to_not_convert"].is_null());
    EXPECT_EQ(qc["meta"]["nsamples"], 4);
    const auto ac = nlohmann::json::parse(read_text(dir_ / "out" / "quant_config.json"));
    EXPECT_EQ(ac["zero_point"], true);
    EXPECT_EQ(ac["q_group_size"], 32);
    EXPECT_EQ(ac["w_bit"], 4);
    EXPECT_EQ(ac["version"], "GEMM");
    EXPECT_TRUE(fs::exists(dir_ / "out" / "tokenizer.json"));
    // Report: 14 packed linears, about 4 + 16/32 + 4/32 bits per quantized weight.
    const auto row =
        std::find_if(report_.rows.begin(), report_.rows.end(), [](auto& r) { return r.type == "awq_int4"; });
    ASSERT_NE(row, report_.rows.end());
    EXPECT_EQ(row->n_tensors, 14);
    EXPECT_NEAR(8.0 * double(row->n_bytes) / double(row->n_elems), 4.0 + 16.0 / 32 + 4.0 / 32, 1e-9);
    EXPECT_GT(report_.file_bytes, report_.n_bytes);
}

TEST_F(AwqExport, BadRequestsAreRefused) {
    AwqExportOptions o = opt_;
    o.bits = 3;
    auto r = write({}, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(r.error().message.find("3 bits"), std::string::npos) << r.error().message;
    o = opt_;
    o.version = "gemv";
    r = write({}, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(r.error().message.find("'gemv'"), std::string::npos) << r.error().message;
    o = opt_;
    o.group_size = 64; // linears were quantized with 32
    r = write({}, o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    r = write({{kNorm, std::vector<float>(3)}}, opt_);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find(kNorm), std::string::npos) << r.error().message;
    r = write({{"model.no_such.weight", std::vector<float>(3)}}, opt_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kUsage);
    linears_["model.layers.9.mlp.up_proj"] = linears_.begin()->second;
    r = write({}, opt_);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("model.layers.9.mlp.up_proj"), std::string::npos) << r.error().message;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "model.safetensors"));
}

} // namespace
} // namespace lowbit::pipeline
