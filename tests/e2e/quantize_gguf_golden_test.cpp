// SPDX-License-Identifier: MIT
// e2e acceptance: `lowbit quantize -m golden-F32.gguf --method <T> [--imatrix golden-imatrix.gguf]` writes, for
// every tensor, the ggml type, shape and bytes (sha256) that llama-quantize wrote (manifest.json of
// data/golden/llamacpp), in llama.cpp's tensor order, with general.file_type / quantization_version set.
#include "core/test_support.h"
#include "format/gguf/gguf_file.h"
#include "format/gguf/sha256.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/run_binary.h"
#pragma GCC diagnostic pop

namespace lowbit::e2e {
namespace {

using json = nlohmann::json;

struct GoldenCase {
    const char* file;
    const char* method;
    bool imatrix;
};

std::ostream& operator<<(std::ostream& os, const GoldenCase& c) {
    return os << c.file;
}

class QuantizeGgufGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(QuantizeGgufGolden, EveryTensorEqualsLlamaQuantize) {
    LOWBIT_REQUIRE_SHARED(dir, "data/golden/llamacpp/");
    json manifest;
    std::ifstream(dir + "manifest.json") >> manifest;
    const json* entry = nullptr;
    for (const json& f : manifest["files"])
        if (f["file"] == GetParam().file) entry = &f;
    ASSERT_NE(entry, nullptr) << GetParam().file;

    const std::string out = ::testing::TempDir() + "/qg_golden_" + std::to_string(::getpid()) + "_" +
                            GetParam().method + (GetParam().imatrix ? "_imat" : "") + ".gguf";
    std::vector<std::string> args = {"quantize", "-m",       dir + "golden-F32.gguf", "-o",
                                     out,        "--method", GetParam().method,       "--no-progress"};
    if (GetParam().imatrix) {
        args.push_back("--imatrix");
        args.push_back(dir + "golden-imatrix.gguf");
    }
    const RunResult r = run_lowbit(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("wrote " + out), std::string::npos) << r.out;

    auto f = gguf::File::open(out);
    ASSERT_TRUE(f.ok()) << f.error().message;
    const gguf::File& g = **f;
    EXPECT_EQ(g.get_int("general.file_type"), (*entry)["metadata"]["general.file_type"].get<int64_t>());
    EXPECT_EQ(g.get_int("general.quantization_version"), 2);
    ASSERT_EQ(g.tensors().size(), (*entry)["tensors"].size());
    // Same order as llama-quantize: sort the manifest by offset.
    std::vector<const json*> want;
    for (const json& t : (*entry)["tensors"]) want.push_back(&t);
    std::sort(want.begin(), want.end(), [](const json* a, const json* b) {
        return (*a)["offset"].get<uint64_t>() < (*b)["offset"].get<uint64_t>();
    });
    int matched = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const json& w = *want[i];
        const format::TensorInfo& t = g.tensors()[i];
        const std::string name = w["name"].get<std::string>();
        EXPECT_EQ(t.name, name) << i;
        std::string type(dtype_name(t.dtype));
        std::string want_type = w["ggml_type"].get<std::string>();
        std::transform(want_type.begin(), want_type.end(), want_type.begin(), ::tolower);
        EXPECT_EQ(type, want_type) << name;
        std::vector<int64_t> ne;
        for (int d = t.shape.n_dims - 1; d >= 0; --d) ne.push_back(t.shape[d]);
        EXPECT_EQ(ne, w["shape"].get<std::vector<int64_t>>()) << name;
        const bool same = gguf::sha256_hex(g.tensor_data(t), t.n_bytes) == w["sha256"].get<std::string>();
        EXPECT_TRUE(same) << name << " (" << want_type << ") bytes differ from llama-quantize's";
        matched += same && t.name == name;
    }
    EXPECT_EQ(matched, static_cast<int>(want.size())) << GetParam().file;
    if (GetParam().imatrix) {
        EXPECT_TRUE(g.has("quantize.imatrix.file"));
        EXPECT_EQ(g.get_int("quantize.imatrix.chunks_count"), 32);
    }
    std::filesystem::remove(out);
}

INSTANTIATE_TEST_SUITE_P(
    Golden, QuantizeGgufGolden,
    ::testing::Values(GoldenCase{"golden-Q8_0.gguf", "q8_0", false}, GoldenCase{"golden-Q6_K.gguf", "q6_k", false},
                      GoldenCase{"golden-Q4_K_M.gguf", "q4_k_m", false}, GoldenCase{"golden-Q4_0.gguf", "q4_0", false},
                      GoldenCase{"golden-Q4_1.gguf", "q4_1", false}, GoldenCase{"golden-Q3_K_M.gguf", "q3_k_m", false},
                      GoldenCase{"golden-Q2_K.gguf", "q2_k", false},
                      GoldenCase{"golden-Q4_K_M-imat.gguf", "q4_k_m", true}),
    [](const ::testing::TestParamInfo<GoldenCase>& p) {
        std::string n = std::string(p.param.method) + (p.param.imatrix ? "_imat" : "");
        return n;
    });

} // namespace
} // namespace lowbit::e2e
