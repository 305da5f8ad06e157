// SPDX-License-Identifier: MIT
// Quantized HF directories built in the test from a seeded f32 model (Linear weights quantized with the scheme
// functions, records written with write_safetensors): logits through the loader == logits of the f32 model
// whose Linear weights are the scheme's dequantized values (nf4/fp4/hqq/rtn, bit for bit); LLM.int8 runs the
// outlier decomposition (== the ref/ back end on the raw int8 weights; closer to the float weights than int8
// without decomposition when an activation outlier column exists). Errors name the method / tensor.
#include "format/hf/hf_model.h"
#include "format/safetensors/safetensors_writer.h"
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "model/quantized/quant_loader.h"
#include "model/quantized/repack.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "scheme/gptq/gptq_pack.h"
#include "scheme/hqq/hqq.h"
#include "scheme/int_group/int_group.h"
#include "scheme/llm_int8/llm_int8.h"
#include "scheme/nf4/nf4.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <random>
#include <unistd.h>

namespace lowbit::model::quantized {
namespace {

namespace fs = std::filesystem;
using scheme::TensorRecord;

const char* kConfigHead = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 96,
 "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
 "num_key_value_heads": 2, "max_position_embeddings": 128, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
 "tie_word_embeddings": false, "torch_dtype": "float32")";

std::string config_json(const std::string& quantization_config) {
    return std::string(kConfigHead) +
           (quantization_config.empty() ? "}" : ", \"quantization_config\": " + quantization_config + "}");
}

format::ModelConfig tiny_config() {
    auto c = hf::parse_hf_config_json(config_json(""), "");
    EXPECT_TRUE(c.ok()) << c.error().message;
    return *c;
}

// Quantizes one Linear weight [rows, cols]: returns its records and writes the dequantized values to `deq`.
using QuantizeFn = std::function<std::vector<TensorRecord>(const std::vector<float>& w, int64_t rows, int64_t cols,
                                                           std::vector<float>& deq)>;

bool is_linear(const std::string& name) {
    return name.size() > 12 && name.compare(name.size() - 12, 12, "_proj.weight") == 0;
}

std::vector<float> values_of(const format::TensorStore& s, const std::string& name) {
    auto v = s.view(name);
    EXPECT_TRUE(v.ok());
    return v->dtype == DType::kF32 ? std::vector<float>(v->as<float>(), v->as<float>() + v->n_elems())
                                   : dense_weight(*v); // repacked 4-bit blocks (repack.h)
}

struct Built {
    std::string dir;
    std::shared_ptr<MemoryStore> reference; // f32 model with the dequantized Linear weights
};

// The seeded model, optionally with a large embedding column (an activation outlier after RMSNorm).
std::shared_ptr<MemoryStore> source_model(bool outlier) {
    const auto c = tiny_config();
    auto s = make_synthetic_model(c, *find_arch("llama"), SourceFormat::kHf, DType::kF32, 77);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (outlier) {
        auto e = values_of(**s, "model.embed_tokens.weight");
        for (int64_t r = 0; r < c.vocab_size; ++r) e[size_t(r * c.hidden_size + 5)] = 60.0f;
        EXPECT_TRUE((*s)->add("model.embed_tokens.weight", DType::kF32, Shape{c.vocab_size, c.hidden_size}, e).ok());
    }
    return *s;
}

Built build_dir(const std::string& tag, const std::string& qc, const QuantizeFn& quantize, bool outlier = false,
                const std::function<void(std::vector<safetensors::TensorToWrite>&)>& edit = {}) {
    auto src = source_model(outlier);
    Built b;
    b.dir = (fs::temp_directory_path() / ("lowbit_ql_" + std::to_string(::getpid()) + "_" + tag)).string();
    fs::remove_all(b.dir);
    fs::create_directories(b.dir);
    b.reference = source_model(outlier);
    std::vector<std::vector<uint8_t>> keep_bytes;
    std::vector<std::vector<TensorRecord>> keep_records;
    std::vector<safetensors::TensorToWrite> out;
    for (const auto& info : src->tensors()) {
        auto v = src->view(info.name);
        EXPECT_TRUE(v.ok());
        if (!is_linear(info.name)) {
            out.push_back({info.name, info.dtype, info.shape, v->data, {}});
            continue;
        }
        const int64_t rows = info.shape.dims[0], cols = info.shape.dims[1];
        std::vector<float> deq;
        keep_records.push_back(quantize(values_of(*src, info.name), rows, cols, deq));
        EXPECT_TRUE(b.reference->add(info.name, DType::kF32, info.shape, deq).ok());
        const std::string prefix = info.name.substr(0, info.name.size() - 7); // minus ".weight"
        for (const auto& r : keep_records.back())
            out.push_back({prefix + "." + r.suffix, r.dtype, r.shape, r.bytes.data(), {}});
    }
    if (edit) edit(out);
    EXPECT_TRUE(safetensors::write_safetensors(b.dir + "/model.safetensors", out).ok());
    std::ofstream(b.dir + "/config.json") << config_json(qc);
    return b;
}

Result<std::unique_ptr<Transformer>> open_dir(const std::string& dir, kernel::Backend be = kernel::Backend::kCpu) {
    LOWBIT_ASSIGN_OR_RETURN(auto m, hf::open_hf_model(dir));
    std::shared_ptr<const format::TensorStore> base = std::move(m.store);
    LOWBIT_ASSIGN_OR_RETURN(auto store, wrap_quantized_dir(std::move(base), dir, m.config));
    return Transformer::create(std::move(store), m.config, SourceFormat::kHf, be);
}

std::vector<float> logits(Transformer& t) {
    std::vector<int32_t> tokens = {1, 17, 33, 5, 90, 42, 8, 64, 3};
    auto cache = t.make_cache(32);
    std::vector<float> out(tokens.size() * size_t(t.config().vocab_size));
    ThreadPool pool(2);
    t.forward(tokens, 0, cache, true, out.data(), &pool);
    return out;
}

std::vector<float> reference_logits(const Built& b, kernel::Backend be = kernel::Backend::kCpu) {
    auto t = Transformer::create(b.reference, tiny_config(), SourceFormat::kHf, be);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return logits(**t);
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i)
        num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
    return std::sqrt(num / den);
}

// The directory's model against the f32 model holding the reference dequantization of every Linear.
// `linear_dtype`: what the loader presents for the Linears (kF32 dense, or a packed4 dtype, repack.h).
//  - ref/ back end: bit-identical logits either way (ref::matmul dequantizes each row through the scheme row, and
//    the repack dequantizes bit-exactly), which also checks every presented weight.
//  - CPU back end: dense f32 runs the same kernels as the reference (bit-identical). Packed kI4Z / NF4 / FP4
//    quantize the activations to 8-bit blocks (~0.4% relative error per matmul, qdot_test.cpp; NF4/FP4 also round
//    their codes to int16, ~1e-5 of absmax): logits within 3% relative L2 after 2 layers and the head.
void expect_matches_dequantized(const Built& b, DType linear_dtype = DType::kF32) {
    auto r = open_dir(b.dir, kernel::Backend::kRef);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const auto got_ref = logits(**r), want_ref = reference_logits(b, kernel::Backend::kRef);
    ASSERT_EQ(got_ref.size(), want_ref.size());
    for (size_t i = 0; i < got_ref.size(); ++i) ASSERT_EQ(got_ref[i], want_ref[i]) << "ref/ logit " << i;
    auto t = open_dir(b.dir);
    ASSERT_TRUE(t.ok()) << t.error().message;
    const auto got = logits(**t), want = reference_logits(b);
    ASSERT_EQ(got.size(), want.size());
    {
        auto hf = hf::open_hf_model(b.dir);
        ASSERT_TRUE(hf.ok());
        auto store = wrap_quantized_dir(std::move(hf->store), b.dir, hf->config);
        ASSERT_TRUE(store.ok());
        const auto* info = (*store)->find("model.layers.0.mlp.down_proj.weight");
        ASSERT_NE(info, nullptr);
        EXPECT_EQ(info->dtype, linear_dtype) << dtype_name(info->dtype);
    }
    if (linear_dtype == DType::kF32) {
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "logit " << i;
    } else {
        EXPECT_LT(rel_err(got, want), 3e-2) << dtype_name(linear_dtype);
    }
    // The Linear weights really are quantized: the f32 source model gives different logits.
    auto f32 = Transformer::create(source_model(false), tiny_config(), SourceFormat::kHf);
    ASSERT_TRUE(f32.ok());
    EXPECT_GT(rel_err(got, logits(**f32)), 1e-4);
    fs::remove_all(b.dir);
}

QuantizeFn nf4_fn(scheme::nf4::QuantType type, bool double_quant) {
    return [=](const std::vector<float>& w, int64_t rows, int64_t cols, std::vector<float>& deq) {
        scheme::nf4::Nf4Params p;
        p.quant_type = type, p.double_quant = double_quant, p.torch_dtype = "float32";
        auto t = scheme::nf4::quantize(w.data(), Shape{rows, cols}, p);
        EXPECT_TRUE(t.ok()) << t.error().message;
        deq.resize(w.size());
        scheme::nf4::dequantize(*t, deq.data());
        return scheme::nf4::to_records(*t);
    };
}

QuantizeFn rtn_fn(const scheme::int_group::IntGroupParams& p) {
    return [=](const std::vector<float>& w, int64_t rows, int64_t cols, std::vector<float>& deq) {
        auto t = scheme::int_group::quantize_rtn(w.data(), rows, cols, p);
        EXPECT_TRUE(t.ok()) << t.error().message;
        deq.resize(w.size());
        scheme::int_group::dequantize(*t, deq.data());
        return scheme::int_group::to_records(*t);
    };
}

// HQQ storage with plain min/max affine codes per group of g consecutive weights (axis 1).
QuantizeFn hqq_fn(int nbits, int64_t g) {
    return [=](const std::vector<float>& w, int64_t rows, int64_t cols, std::vector<float>& deq) {
        const int64_t n_groups = rows * cols / g, q_max = (1 << nbits) - 1;
        std::vector<uint8_t> q(w.size());
        std::vector<float> scale(static_cast<size_t>(n_groups)), zero(static_cast<size_t>(n_groups));
        for (int64_t r = 0; r < n_groups; ++r) {
            const float* x = w.data() + r * g;
            const float lo = *std::min_element(x, x + g), hi = *std::max_element(x, x + g);
            scale[size_t(r)] = (hi - lo) / float(q_max);
            zero[size_t(r)] = std::nearbyint(-lo / scale[size_t(r)]);
            for (int64_t j = 0; j < g; ++j)
                q[size_t(r * g + j)] = uint8_t(
                    std::clamp<float>(std::nearbyint(x[j] / scale[size_t(r)] + zero[size_t(r)]), 0.0f, float(q_max)));
        }
        scheme::hqq::HqqParams p;
        p.nbits = nbits, p.group_size = g;
        auto t = scheme::hqq::make_tensor(p, Shape{rows, cols}, q, scale, zero);
        EXPECT_TRUE(t.ok()) << t.error().message;
        deq.resize(w.size());
        scheme::hqq::dequantize(*t, deq.data());
        return scheme::hqq::to_records(*t, false, false);
    };
}

QuantizeFn int8_fn() {
    return [](const std::vector<float>& w, int64_t rows, int64_t cols, std::vector<float>& deq) {
        auto t = scheme::llm_int8::quantize(w.data(), rows, cols);
        EXPECT_TRUE(t.ok()) << t.error().message;
        deq.resize(w.size());
        scheme::llm_int8::dequantize(*t, deq.data());
        return scheme::llm_int8::to_records(*t);
    };
}

const char* kNf4Config = R"({"quant_method": "bitsandbytes", "load_in_4bit": true, "bnb_4bit_quant_type": "nf4",
  "bnb_4bit_use_double_quant": true, "bnb_4bit_compute_dtype": "float32"})";
const char* kRtnConfig = R"({"quant_method": "lowbit_rtn", "bits": 4, "group_size": 32, "sym": false,
  "layout": "int_group_v1"})";

TEST(QuantLoader, Nf4DoubleQuantEqualsDequantizedModel) {
    expect_matches_dequantized(build_dir("nf4", kNf4Config, nf4_fn(scheme::nf4::QuantType::kNf4, true)),
                               DType::kNF4x64);
}

TEST(QuantLoader, Fp4EqualsDequantizedModel) {
    expect_matches_dequantized(build_dir("fp4",
                                         R"({"quant_method": "bitsandbytes", "load_in_4bit": true,
      "bnb_4bit_quant_type": "fp4", "bnb_4bit_use_double_quant": false})",
                                         nf4_fn(scheme::nf4::QuantType::kFp4, false)),
                               DType::kFP4x64);
}

TEST(QuantLoader, HqqEqualsDequantizedModel) {
    const char* qc = R"({"quant_method": "hqq", "quant_config": {"weight_quant_params": {"nbits": 4,
      "group_size": 64, "axis": 1}}})";
    expect_matches_dequantized(build_dir("hqq4", qc, hqq_fn(4, 64)), DType::kI4Z);
    expect_matches_dequantized(build_dir("hqq3", qc, hqq_fn(3, 64)));
}

TEST(QuantLoader, RtnEqualsDequantizedModel) {
    expect_matches_dequantized(build_dir("rtn4", kRtnConfig, rtn_fn({4, 32, false})), DType::kI4Z);
    expect_matches_dequantized(build_dir("rtn8",
                                         R"({"quant_method": "lowbit_rtn", "bits": 8, "group_size": 32,
      "sym": false, "layout": "int_group_v1"})",
                                         rtn_fn({8, 32, false})),
                               DType::kI8Z);
    expect_matches_dequantized(build_dir("rtn3pc",
                                         R"({"quant_method": "lowbit_rtn", "bits": 3, "group_size": -1,
      "sym": true, "layout": "int_group_v1"})",
                                         rtn_fn({3, -1, true})));
}

const char* int8_config(float threshold) {
    static std::string s;
    s = R"({"quant_method": "bitsandbytes", "load_in_8bit": true, "llm_int8_threshold": )" + std::to_string(threshold) +
        "}";
    return s.c_str();
}

// The raw int8 weights + SCB (+ threshold) in memory, run on the ref/ back end: ref::matmul_int8_decomp on
// every Linear, with no loader involved.
std::vector<float> int8_ref_logits(bool outlier, float threshold) {
    auto s = source_model(outlier);
    for (auto info : std::vector<format::TensorInfo>(s->tensors())) {
        if (!is_linear(info.name)) continue;
        const int64_t rows = info.shape.dims[0], cols = info.shape.dims[1];
        auto t = scheme::llm_int8::quantize(values_of(*s, info.name).data(), rows, cols);
        EXPECT_TRUE(t.ok());
        const std::string prefix = info.name.substr(0, info.name.size() - 6);
        std::vector<uint8_t> q(t->weight.size()), scb(t->scb.size() * 4);
        std::memcpy(q.data(), t->weight.data(), q.size());
        std::memcpy(scb.data(), t->scb.data(), scb.size());
        EXPECT_TRUE(s->add_raw(info.name, DType::kI8, info.shape, q).ok());
        EXPECT_TRUE(s->add_raw(prefix + "SCB", DType::kF32, Shape{rows}, scb).ok());
    }
    EXPECT_TRUE(s->add(kInt8ThresholdTensor, DType::kF32, Shape{1}, {threshold}).ok());
    auto t = Transformer::create(s, tiny_config(), SourceFormat::kHf, kernel::Backend::kRef);
    EXPECT_TRUE(t.ok()) << t.error().message;
    return logits(**t);
}

// GPTQ act-order (desc_act without static groups, as AutoGPTQ writes it): groups of g columns in a random order of
// the columns (g_idx[c] = the group of column c), RTN codes per group, GPTQ v2 records.
QuantizeFn gptq_act_order_fn(int64_t g, uint32_t seed) {
    return [=](const std::vector<float>& w, int64_t rows, int64_t cols, std::vector<float>& deq) {
        std::mt19937 rng(seed + uint32_t(rows * 7 + cols));
        std::vector<int32_t> order(static_cast<size_t>(cols));
        for (int64_t c = 0; c < cols; ++c) order[size_t(c)] = int32_t(c);
        std::shuffle(order.begin(), order.end(), rng);
        scheme::gptq::GptqLinear l;
        l.bits = 4, l.n_out = rows, l.n_in = cols, l.n_groups = cols / g;
        l.codes.resize(size_t(rows * cols)), l.g_idx.resize(size_t(cols));
        for (int64_t j = 0; j < cols; ++j) l.g_idx[size_t(order[size_t(j)])] = int32_t(j / g);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t gi = 0; gi < l.n_groups; ++gi) {
                float lo = 0.0f, hi = 0.0f;
                for (int64_t j = gi * g; j < (gi + 1) * g; ++j) {
                    const float v = w[size_t(r * cols + order[size_t(j)])];
                    lo = std::min(lo, v), hi = std::max(hi, v);
                }
                const float scale = std::max(hi - lo, 1e-6f) / 15.0f;
                const int zero = std::clamp(int(std::lround(-lo / scale)), 0, 15);
                l.scales.push_back(scale), l.zeros.push_back(zero);
                for (int64_t j = gi * g; j < (gi + 1) * g; ++j) {
                    const int64_t c = order[size_t(j)];
                    l.codes[size_t(r * cols + c)] =
                        std::clamp(int(std::lround(w[size_t(r * cols + c)] / scale)) + zero, 0, 15);
                }
            }
        auto recs = scheme::gptq::pack(l, scheme::gptq::GptqFormat::kV2);
        EXPECT_TRUE(recs.ok()) << recs.error().message;
        auto back = scheme::gptq::unpack(*recs, scheme::gptq::GptqFormat::kV2, 4, rows, cols); // scales as f16
        EXPECT_TRUE(back.ok());
        deq = scheme::gptq::dequantize(*back);
        return *recs;
    };
}

// Act-order GPTQ stays packed: kI4Z with its columns sorted by group and "<P>.lowbit_col_perm" (model/weights.h).
// The ref/ back end gives the dequantized model's logits up to the order of float additions (the permuted rows sum
// in the stored order), the CPU engine within the 8-bit activation bound of expect_matches_dequantized.
TEST(QuantLoader, GptqActOrderStaysPacked) {
    const char* qc = R"({"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": true, "sym": false,
      "checkpoint_format": "gptq_v2"})";
    const Built b = build_dir("gptq_act", qc, gptq_act_order_fn(32, 5));
    {
        auto hf = hf::open_hf_model(b.dir);
        ASSERT_TRUE(hf.ok());
        auto store = wrap_quantized_dir(std::move(hf->store), b.dir, hf->config);
        ASSERT_TRUE(store.ok()) << store.error().message;
        for (const char* p : {"model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj"}) {
            const auto* w = (*store)->find(std::string(p) + ".weight");
            ASSERT_NE(w, nullptr);
            EXPECT_EQ(w->dtype, DType::kI4Z) << p;
            const auto* perm = (*store)->find(std::string(p) + "." + kColPermSuffix);
            ASSERT_NE(perm, nullptr) << p;
            EXPECT_EQ(perm->dtype, DType::kI32);
            EXPECT_EQ(perm->shape, Shape{w->shape.dims[1]});
        }
    }
    auto r = open_dir(b.dir, kernel::Backend::kRef);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_LT(rel_err(logits(**r), reference_logits(b, kernel::Backend::kRef)), 1e-5);
    auto t = open_dir(b.dir);
    ASSERT_TRUE(t.ok()) << t.error().message;
    const auto got = logits(**t);
    EXPECT_LT(rel_err(got, reference_logits(b)), 3e-2);
    auto f32 = Transformer::create(source_model(false), tiny_config(), SourceFormat::kHf);
    ASSERT_TRUE(f32.ok());
    EXPECT_GT(rel_err(got, logits(**f32)), 1e-4); // really quantized
    fs::remove_all(b.dir);
}

// A column order that is not a permutation of the weight's columns is refused when the weights are bound.
TEST(QuantLoader, ColumnOrderMustBeAPermutation) {
    std::vector<int32_t> bad(64, 0); // q_proj of layer 0: [64, 64]; every entry column 0
    const Built b = build_dir("perm_bad", kRtnConfig, rtn_fn({4, 32, false}), false, [&](auto& out) {
        out.push_back(
            {std::string("model.layers.0.self_attn.q_proj.") + kColPermSuffix, DType::kI32, Shape{64}, bad.data(), {}});
    });
    auto t = open_dir(b.dir);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kBadInput);
    EXPECT_NE(t.error().message.find("is not a permutation of the 64 columns"), std::string::npos) << t.error().message;
    fs::remove_all(b.dir);
}

TEST(QuantLoader, Int8RunsOutlierDecomposition) {
    auto b = build_dir("int8", int8_config(6.0f), int8_fn(), /*outlier=*/true);
    auto t = open_dir(b.dir);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ((*t)->weights().layers[0].wq.dtype, DType::kI8);
    EXPECT_EQ((*t)->weights().layers[0].wq.outlier_threshold, 6.0f);
    const auto got = logits(**t);
    // Loader + threaded cpu kernel == ref/ decomposition on the raw records.
    const auto want = int8_ref_logits(true, 6.0f);
    EXPECT_LT(rel_err(got, want), 1e-6);
    // Not the plain dequantized-int8 float model (the int8 activation part rounds), but close to it ...
    const auto deq = reference_logits(b);
    const double err_decomp = rel_err(got, deq);
    EXPECT_GT(err_decomp, 1e-7);
    EXPECT_LT(err_decomp, 0.05);
    // ... and closer than int8 activations without the decomposition, whose row absmax is the outlier (RMSNorm
    // caps it near sqrt(hidden) = 8; measured about 2.2x the error).
    const double err_plain = rel_err(int8_ref_logits(true, 0.0f), deq);
    EXPECT_GT(err_plain, 1.5 * err_decomp) << "decomp " << err_decomp << " plain " << err_plain;
    fs::remove_all(b.dir);
}

TEST(QuantLoader, Int8ThresholdZeroMeansNoDecomposition) {
    auto b = build_dir("int8t0", int8_config(0.0f), int8_fn(), true);
    auto t = open_dir(b.dir);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_LT(rel_err(logits(**t), int8_ref_logits(true, 0.0f)), 1e-6);
    fs::remove_all(b.dir);
}

// dequantize_all (what convert reads): LLM.int8 becomes dense f32 q * SCB / 127, bit for bit the scheme's
// dequantization, with no int8 tensor, SCB or threshold left in the store.
TEST(QuantLoader, Int8DequantizeAllGivesDenseWeights) {
    auto b = build_dir("int8dense", int8_config(6.0f), int8_fn(), true);
    auto m = hf::open_hf_model(b.dir);
    ASSERT_TRUE(m.ok()) << m.error().message;
    std::shared_ptr<const format::TensorStore> base = std::move(m->store);
    auto s = wrap_quantized_dir(std::move(base), b.dir, m->config, /*dequantize_all=*/true);
    ASSERT_TRUE(s.ok()) << s.error().message;
    int n_linear = 0;
    for (const auto& info : (*s)->tensors()) {
        EXPECT_EQ(info.dtype, DType::kF32) << info.name;
        EXPECT_EQ(info.name.find(".SCB"), std::string::npos) << info.name;
        EXPECT_NE(info.name, kInt8ThresholdTensor);
        if (!is_linear(info.name)) continue;
        ++n_linear;
        ASSERT_EQ(values_of(**s, info.name), values_of(*b.reference, info.name)) << info.name;
    }
    EXPECT_EQ(n_linear, 7 * tiny_config().n_layers);
    // The default (runtime) wrap keeps int8 + SCB.
    auto m2 = hf::open_hf_model(b.dir);
    ASSERT_TRUE(m2.ok());
    std::shared_ptr<const format::TensorStore> base2 = std::move(m2->store);
    auto rt = wrap_quantized_dir(std::move(base2), b.dir, m2->config);
    ASSERT_TRUE(rt.ok());
    EXPECT_EQ((*rt)->find("model.layers.0.self_attn.q_proj.weight")->dtype, DType::kI8);
    fs::remove_all(b.dir);
}

TEST(QuantLoader, DescribeQuantizationNamesMethodBitsAndGroup) {
    auto d = [](const std::string& qc) {
        auto r = describe_quantization(config_json(qc));
        EXPECT_TRUE(r.ok());
        return r.ok() ? *r : std::string("<error>");
    };
    EXPECT_EQ(d(""), "");
    EXPECT_EQ(d(kNf4Config), "bitsandbytes nf4");
    EXPECT_EQ(d(int8_config(6.0f)), "bitsandbytes LLM.int8");
    EXPECT_EQ(d(kRtnConfig), "lowbit_rtn int4 g32 asym");
    EXPECT_EQ(d(R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": true})"), "gptq int4 g128 sym");
    EXPECT_EQ(d(R"({"quant_method": "gptq", "bits": 8, "group_size": -1})"), "gptq int8 per-channel");
    EXPECT_EQ(d(R"({"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": true})"), "awq int4 g64");
    EXPECT_EQ(d(R"({"quant_method": "hqq", "quant_config": {"weight_quant_params": {"nbits": 3, "group_size": 64}}})"),
              "hqq int3 g64");
    EXPECT_FALSE(describe_quantization("{").ok());
}

TEST(QuantLoader, ConfigWithoutQuantizationKeepsTheStore) {
    std::shared_ptr<const format::TensorStore> base = source_model(false);
    auto s = wrap_quantized(base, config_json(""), tiny_config());
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->get(), base.get());
}

TEST(QuantLoader, UnknownMethodIsUnsupportedAndListsSupported) {
    auto s = wrap_quantized(source_model(false), config_json(R"({"quant_method": "aqlm", "bits": 4})"), tiny_config());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
    EXPECT_NE(s.error().message.find("'aqlm'"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("hqq"), std::string::npos);
    EXPECT_NE(s.error().message.find("lowbit_rtn"), std::string::npos);
    auto v = wrap_quantized(source_model(false), config_json(R"({"quant_method": "bitsandbytes"})"), tiny_config());
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().code, ErrorCode::kUnsupported);
}

void drop(std::vector<safetensors::TensorToWrite>& t, const std::string& name) {
    t.erase(std::remove_if(t.begin(), t.end(), [&](const auto& x) { return x.name == name; }), t.end());
}

TEST(QuantLoader, MissingRecordNamesTheTensor) {
    const std::string p = "model.layers.1.mlp.up_proj";
    auto b = build_dir("nf4miss", kNf4Config, nf4_fn(scheme::nf4::QuantType::kNf4, true), false,
                       [&](auto& files) { drop(files, p + ".weight.absmax"); });
    auto t = open_dir(b.dir);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kBadInput);
    EXPECT_NE(t.error().message.find(p), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find("absmax"), std::string::npos) << t.error().message;
    fs::remove_all(b.dir);

    auto b2 = build_dir("int8miss", int8_config(6.0f), int8_fn(), false, [&](auto& files) { drop(files, p + ".SCB"); });
    auto t2 = open_dir(b2.dir);
    ASSERT_FALSE(t2.ok());
    EXPECT_EQ(t2.error().code, ErrorCode::kBadInput);
    EXPECT_NE(t2.error().message.find(p + ".SCB"), std::string::npos) << t2.error().message;
    fs::remove_all(b2.dir);

    auto b3 = build_dir("nf4state", kNf4Config, nf4_fn(scheme::nf4::QuantType::kNf4, true), false,
                        [&](auto& files) { drop(files, p + ".weight.quant_state.bitsandbytes__nf4"); });
    auto t3 = open_dir(b3.dir);
    ASSERT_FALSE(t3.ok());
    EXPECT_EQ(t3.error().code, ErrorCode::kBadInput);
    EXPECT_NE(t3.error().message.find(p + ".weight"), std::string::npos) << t3.error().message;
    fs::remove_all(b3.dir);
}

TEST(QuantLoader, ShapeMismatchIsBadInput) {
    // Scales of another module: the column count no longer matches qweight.
    const std::string p = "model.layers.0.self_attn.q_proj", other = "model.layers.0.mlp.down_proj";
    std::vector<uint8_t> swapped;
    auto b = build_dir("rtnshape", kRtnConfig, rtn_fn({4, 32, false}), false, [&](auto& t) {
        for (auto& x : t)
            if (x.name == other + ".scales") x.name = "tmp.scales";
        for (auto& x : t)
            if (x.name == p + ".scales") x.name = other + ".scales";
        for (auto& x : t)
            if (x.name == "tmp.scales") x.name = p + ".scales";
    });
    auto t = open_dir(b.dir);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kBadInput);
    EXPECT_TRUE(t.error().message.find(p) != std::string::npos || t.error().message.find(other) != std::string::npos)
        << t.error().message;
    fs::remove_all(b.dir);
}

// A quantized directory whose config.json lost its quantization_config: the error says so (not a shape error).
TEST(QuantLoader, DeletedQuantizationConfigIsNamed) {
    auto b = build_dir("nf4noconf", kNf4Config, nf4_fn(scheme::nf4::QuantType::kNf4, true));
    std::ofstream(b.dir + "/config.json") << config_json("");
    auto t = open_dir(b.dir);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kBadInput);
    EXPECT_NE(t.error().message.find("no quantization_config"), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find("absmax"), std::string::npos) << t.error().message;
    fs::remove_all(b.dir);
}

// A config of another method than the tensors': the records it does not read are named.
TEST(QuantLoader, ConfigOfAnotherMethodIsNamed) {
    auto b = build_dir("rtnasnf4", kNf4Config, rtn_fn({4, 32, false}));
    auto t = open_dir(b.dir);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ErrorCode::kBadInput);
    EXPECT_NE(t.error().message.find("does not match"), std::string::npos) << t.error().message;
    fs::remove_all(b.dir);
}

// A quant-state tensor reshaped to another shape of the same byte count ([n] -> [n/2, 2]) is refused.
TEST(QuantLoader, ReshapedQuantStateIsRefused) {
    const std::string p = "model.layers.0.mlp.up_proj";
    struct Case {
        const char* tag;
        std::string qc;
        QuantizeFn fn;
        std::string suffix;
    };
    const std::vector<Case> cases = {
        {"nf4abs", kNf4Config, nf4_fn(scheme::nf4::QuantType::kNf4, false), ".weight.absmax"},
        {"nf4dq", kNf4Config, nf4_fn(scheme::nf4::QuantType::kNf4, true), ".weight.nested_quant_map"},
        {"int8scb", int8_config(6.0f), int8_fn(), ".SCB"},
        {"rtnsc", kRtnConfig, rtn_fn({4, 32, false}), ".scales"},
    };
    for (const auto& c : cases) {
        auto b = build_dir(c.tag, c.qc, c.fn, false, [&](auto& files) {
            for (auto& x : files)
                if (x.name == p + c.suffix) {
                    const int64_t n = x.shape.n_elems(); // 1-D -> [n/2, 2]; 2-D -> flat [n]: same bytes
                    x.shape = x.shape.n_dims == 1 ? Shape{n / 2, 2} : Shape{n};
                }
        });
        auto t = open_dir(b.dir);
        ASSERT_FALSE(t.ok()) << c.tag;
        EXPECT_EQ(t.error().code, ErrorCode::kBadInput) << c.tag;
        EXPECT_NE(t.error().message.find(c.suffix.substr(1)), std::string::npos) << c.tag << ": " << t.error().message;
        EXPECT_NE(t.error().message.find(p), std::string::npos) << c.tag << ": " << t.error().message;
        fs::remove_all(b.dir);
    }
}

} // namespace
} // namespace lowbit::model::quantized
