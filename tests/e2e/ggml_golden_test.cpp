// SPDX-License-Identifier: MIT
// Bit-exactness against llama.cpp: every tensor of the golden llama-quantize outputs ($LOWBIT_SHARED/data/golden/
// llamacpp, README there) must be reproduced byte for byte from golden-F32.gguf — the per-tensor type chosen by
// kquant::plan_mix, the bytes by the scheme table, the importance (Q4_K_M-imat) from golden-imatrix.gguf.
#include "core/dtype.h"
#include "core/test_support.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/imatrix_file.h"
#include "format/gguf/sha256.h"
#include "quantize/kquant/imatrix.h"
#include "quantize/kquant/mix.h"

#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace lowbit {
namespace {

using nlohmann::json;
namespace kq = quantize::kquant;

constexpr const char* kGoldenDir = "data/golden/llamacpp/";

json load_manifest(const std::string& path) {
    std::ifstream f(path);
    return json::parse(f);
}

const json& file_entry(const json& manifest, const std::string& file) {
    for (const auto& f : manifest["files"])
        if (f["file"] == file) return f;
    static const json kNone;
    ADD_FAILURE() << "manifest has no entry for " << file;
    return kNone;
}

// The source tensors (names, ggml dims, F32) and hparams of golden-F32.gguf, from the manifest.
std::vector<kq::MixTensor> source_tensors(const json& src) {
    std::vector<kq::MixTensor> out;
    for (const auto& t : src["tensors"]) {
        kq::MixTensor m;
        m.name = t["name"].get<std::string>();
        m.ne = t["shape"].get<std::vector<int64_t>>();
        m.dtype = DType::kF32;
        out.push_back(std::move(m));
    }
    return out;
}

kq::MixHparams source_hparams(const json& src) {
    const auto& md = src["metadata"];
    kq::MixHparams hp;
    hp.arch = md["general.architecture"].get<std::string>();
    hp.n_layer = md["llama.block_count"].get<int>();
    hp.n_head = md["llama.attention.head_count"].get<int>();
    hp.n_head_kv = md["llama.attention.head_count_kv"].get<int>();
    return hp;
}

struct GoldenCase {
    const char* file;
    bool imatrix;
};

const GoldenCase kCases[] = {
    {"golden-Q8_0.gguf", false}, {"golden-Q6_K.gguf", false},       {"golden-Q4_K_M.gguf", false},
    {"golden-Q4_0.gguf", false}, {"golden-Q4_1.gguf", false},       {"golden-Q3_K_M.gguf", false},
    {"golden-Q2_K.gguf", false}, {"golden-Q4_K_M-imat.gguf", true},
};

void PrintTo(const GoldenCase& c, std::ostream* os) {
    *os << c.file;
} // readable ctest names

class GgmlGolden : public ::testing::TestWithParam<GoldenCase> {};

// Importance per weight name from golden-imatrix.gguf: the format reader (gguf::read_imatrix) + llama-quantize's
// formula (kquant::importance_from_imatrix), the same pieces `lowbit quantize --imatrix` uses.
std::map<std::string, std::vector<float>> load_importance(const std::string& path) {
    std::map<std::string, std::vector<float>> out;
    auto data = gguf::read_imatrix(path);
    EXPECT_TRUE(data.ok()) << data.error().message;
    if (!data.ok()) return out;
    for (const auto& [weight, e] : data->entries) {
        auto imp = kq::importance_from_imatrix(weight, e.in_sum2, e.counts);
        EXPECT_TRUE(imp.ok()) << imp.error().message;
        if (imp.ok()) out[weight] = std::move(*imp);
    }
    return out;
}

TEST_P(GgmlGolden, MixPicksManifestTypes) {
    LOWBIT_REQUIRE_SHARED(manifest_path, std::string(kGoldenDir) + "manifest.json");
    const json manifest = load_manifest(manifest_path);
    const json& src = file_entry(manifest, "golden-F32.gguf");
    const json& dst = file_entry(manifest, GetParam().file);
    const auto ft = kq::file_type_from_id(dst["metadata"]["general.file_type"].get<int>());
    ASSERT_TRUE(ft.has_value());
    const auto tensors = source_tensors(src);
    kq::MixOptions opts;
    opts.has_imatrix = GetParam().imatrix;
    auto plan = kq::plan_mix(tensors, source_hparams(src), *ft, opts);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    std::map<std::string, std::string> want;
    for (const auto& t : dst["tensors"]) want[t["name"].get<std::string>()] = t["ggml_type"].get<std::string>();
    ASSERT_EQ(want.size(), tensors.size());
    int matched = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto expected = dtype_from_name(want[tensors[i].name]);
        ASSERT_TRUE(expected.has_value()) << want[tensors[i].name];
        EXPECT_EQ(dtype_name(plan->types[i]), dtype_name(*expected)) << tensors[i].name;
        matched += plan->types[i] == *expected;
    }
    EXPECT_EQ(matched, static_cast<int>(tensors.size()));
    EXPECT_EQ(plan->n_fallback, 0);
    // llama-quantize writes tensors in its loader's order; ours must agree (for byte-identical files).
    std::vector<std::pair<uint64_t, std::string>> by_offset;
    for (const auto& t : dst["tensors"])
        by_offset.emplace_back(t["offset"].get<uint64_t>(), t["name"].get<std::string>());
    std::sort(by_offset.begin(), by_offset.end());
    const auto order = kq::llama_tensor_order(tensors);
    ASSERT_EQ(order.size(), by_offset.size());
    for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(tensors[order[i]].name, by_offset[i].second) << i;
}

TEST_P(GgmlGolden, EveryTensorBitExact) {
    LOWBIT_REQUIRE_SHARED(dir, kGoldenDir);
    const json manifest = load_manifest(dir + "manifest.json");
    const json& dst = file_entry(manifest, GetParam().file);
    auto src = gguf::File::open(dir + "golden-F32.gguf");
    ASSERT_TRUE(src.ok()) << src.error().message;
    std::map<std::string, std::vector<float>> importance;
    if (GetParam().imatrix) {
        importance = load_importance(dir + "golden-imatrix.gguf");
        EXPECT_FALSE(importance.empty());
    }
    int n_tensors = 0, n_matched = 0, n_with_importance = 0;
    std::vector<uint8_t> out;
    for (const auto& t : dst["tensors"]) {
        const std::string name = t["name"].get<std::string>();
        const auto dtype = dtype_from_name(t["ggml_type"].get<std::string>());
        ASSERT_TRUE(dtype.has_value()) << name;
        const format::TensorInfo* info = (*src)->find(name);
        ASSERT_NE(info, nullptr) << name;
        ASSERT_EQ(info->dtype, DType::kF32) << name;
        const auto ne = t["shape"].get<std::vector<int64_t>>();
        const int64_t n_per_row = ne[0];
        const int64_t n_rows = static_cast<int64_t>(info->n_bytes / 4) / n_per_row;
        const auto* x = reinterpret_cast<const float*>((*src)->tensor_data(*info));
        out.resize(t["nbytes"].get<size_t>());
        if (*dtype == DType::kF32) {
            ASSERT_EQ(out.size(), info->n_bytes);
            std::copy_n((*src)->tensor_data(*info), out.size(), out.begin());
        } else {
            ASSERT_EQ(dtype_row_bytes(*dtype, n_per_row).value() * static_cast<uint64_t>(n_rows), out.size()) << name;
            const auto it = importance.find(name);
            const float* imp = nullptr;
            if (it != importance.end()) {
                ASSERT_EQ(it->second.size(), static_cast<size_t>(n_per_row)) << name;
                imp = it->second.data();
                ++n_with_importance;
            }
            const Status st = kq::quantize_rows(*dtype, x, n_rows, n_per_row, imp, out.data());
            ASSERT_TRUE(st.ok()) << st.error().message;
        }
        ++n_tensors;
        const bool same = gguf::sha256_hex(out.data(), out.size()) == t["sha256"].get<std::string>();
        EXPECT_TRUE(same) << name << " (" << t["ggml_type"].get<std::string>() << ") differs from llama.cpp";
        n_matched += same;
    }
    EXPECT_EQ(n_matched, n_tensors) << GetParam().file;
    if (GetParam().imatrix) {
        EXPECT_GT(n_with_importance, 40); // all blk.* weights carry imatrix entries
    }
}

// Deterministic inputs of tests/golden/ggml_quants_llamacpp.json (the same code produced them in C for llama.cpp).
uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}
float gen_value(uint32_t seed, uint32_t i) {
    const uint32_t h = mix32(i * 0x9E3779B9U ^ seed);
    const float u = static_cast<float>(h >> 8) * (1.0f / 16777216.0f) - 0.5f;
    const float cube = u * u * u * 8.0f; // heavy tails; separate statements: no FMA, as in the C generator
    return cube + u;
}
float gen_importance(uint32_t seed, uint32_t i) {
    const uint32_t h = mix32(i * 0x85EBCA6BU ^ seed);
    if ((h & 7u) == 0) return 0.0f; // some columns never activated
    return static_cast<float>(h >> 16) * (1.0f / 65536.0f) * 50.0f;
}

// Importance-weighted paths (quantize_row_<type>_impl) for every type, against llama.cpp's own C code.
TEST(GgmlGoldenVectors, MatchLlamaCppQuantizeIncludingImatrixPaths) {
    const std::string path = testing_support::source_dir() + "/tests/golden/ggml_quants_llamacpp.json";
    std::ifstream f(path);
    ASSERT_TRUE(f.good()) << path;
    const json doc = json::parse(f);
    int n_cases = 0, n_imatrix = 0;
    for (const auto& c : doc["cases"]) {
        const auto dtype = dtype_from_name(c["type"].get<std::string>());
        ASSERT_TRUE(dtype.has_value());
        const int64_t n = c["n_per_row"].get<int64_t>(), n_rows = c["n_rows"].get<int64_t>();
        const auto seed = c["seed"].get<uint32_t>();
        std::vector<float> x(static_cast<size_t>(n * n_rows));
        for (int64_t r = 0; r < n_rows; ++r) {
            const float gain = 0.01f * static_cast<float>(r + 1);
            for (int64_t i = 0; i < n; ++i) x[r * n + i] = gen_value(seed, static_cast<uint32_t>(r * n + i)) * gain;
        }
        std::vector<float> imp;
        if (!c["importance_seed"].is_null()) {
            imp.resize(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) imp[i] = gen_importance(c["importance_seed"].get<uint32_t>(), i);
            ++n_imatrix;
        }
        std::vector<uint8_t> out(c["nbytes"].get<size_t>());
        ASSERT_EQ(dtype_row_bytes(*dtype, n).value() * n_rows, out.size());
        const Status st =
            kq::quantize_rows(*dtype, x.data(), n_rows, n, imp.empty() ? nullptr : imp.data(), out.data());
        ASSERT_TRUE(st.ok()) << st.error().message;
        EXPECT_EQ(gguf::sha256_hex(out.data(), out.size()), c["sha256"].get<std::string>())
            << c["type"] << " n=" << n << (imp.empty() ? " plain" : " with importance");
        ++n_cases;
    }
    EXPECT_EQ(n_cases, 40);
    EXPECT_EQ(n_imatrix, 20);
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, GgmlGolden, ::testing::ValuesIn(kCases), [](const auto& param_info) {
    std::string n = param_info.param.file;
    n = n.substr(7, n.size() - 12); // "golden-" ... ".gguf"
    for (auto& c : n)
        if (c == '-') c = '_';
    return n;
});

} // namespace
} // namespace lowbit
