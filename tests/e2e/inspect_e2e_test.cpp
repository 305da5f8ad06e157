// SPDX-License-Identifier: MIT
// e2e: `lowbit convert` then `lowbit inspect --json`: exact parameter counts and bits per weight of the stored
// types, the HF folder view, and bad paths (exit 3, no crash).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

// GCC 12 reports a false -Wrestrict inside run_binary.h's string concatenation when it inlines run_lowbit.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/run_binary.h"
#pragma GCC diagnostic pop

namespace lowbit::e2e {

int64_t make_tiny_hf_dir(const std::string& dir, const std::string& arch, bool tied); // convert_e2e_test.cpp

namespace {

nlohmann::json inspect_json(const std::string& path) {
    RunResult r = run_lowbit({"inspect", path, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    try {
        return nlohmann::json::parse(r.out);
    } catch (const nlohmann::json::exception& e) {
        ADD_FAILURE() << "inspect --json is not JSON: " << e.what();
        return {};
    }
}

TEST(InspectE2E, ParamsAndBitsPerWeightAfterConvert) {
    const std::string d = ::testing::TempDir() + "/lowbit_inspect_e2e_" + std::to_string(::getpid());
    for (bool tied : {false, true}) {
        const int64_t n_params = make_tiny_hf_dir(d, "LlamaForCausalLM", tied);
        const auto hf = inspect_json(d);
        EXPECT_EQ(hf["format"], "hf");
        EXPECT_EQ(hf["n_params"].get<int64_t>(), n_params);
        EXPECT_EQ(hf["bpw"].get<double>(), 32.0);
        EXPECT_EQ(hf["config"]["n_kv_heads"].get<int64_t>(), 2);
        struct {
            const char* type;
            double bpw_2d;
        } cases[] = {{"f32", 32.0}, {"f16", 16.0}, {"bf16", 16.0}, {"q8_0", 8.5}};
        for (const auto& c : cases) {
            const std::string out = d + "/m-" + c.type + ".gguf";
            ASSERT_EQ(run_lowbit({"convert", d, "-o", out, "--type", c.type}).exit_code, 0);
            const auto j = inspect_json(out);
            SCOPED_TRACE(c.type);
            EXPECT_EQ(j["format"], "gguf");
            EXPECT_EQ(j["architecture"], "llama");
            EXPECT_EQ(j["n_params"].get<int64_t>(), n_params);
            EXPECT_EQ(j["bpw_2d"].get<double>(), c.bpw_2d);
            EXPECT_EQ(j["n_tensors"].get<int64_t>(), tied ? 20 : 21);
            EXPECT_EQ(j["file_bytes"].get<uint64_t>(), std::filesystem::file_size(out));
            // bpw over all tensors: 1-D tensors stay f32 (5 norms of 64 = 320 elements)
            const double norm_elems = 320, w_elems = static_cast<double>(n_params) - norm_elems;
            EXPECT_DOUBLE_EQ(j["bpw"].get<double>(),
                             (w_elems * c.bpw_2d + norm_elems * 32) / static_cast<double>(n_params));
            EXPECT_EQ(j["memory"][0]["scheme"], "FP32");
            EXPECT_EQ(j["memory"][0]["bytes"].get<int64_t>(), n_params * 4);
            EXPECT_EQ(j["memory"][1]["bytes"].get<int64_t>(), n_params * 2);
            uint64_t sum = 0;
            for (const auto& t : j["tensors"]) sum += t["bytes"].get<uint64_t>();
            EXPECT_EQ(sum, j["tensor_bytes"].get<uint64_t>());
        }
        RunResult text = run_lowbit({"inspect", d + "/m-q8_0.gguf"});
        EXPECT_EQ(text.exit_code, 0);
        EXPECT_NE(text.out.find("blk.1.ffn_down.weight"), std::string::npos);
        EXPECT_NE(text.out.find("GGUF Q4_K"), std::string::npos);
    }
}

TEST(InspectE2E, BadPaths) {
    const std::string f = ::testing::TempDir() + "/lowbit_inspect_garbage_" + std::to_string(::getpid()) + ".bin";
    std::ofstream(f) << "not a model";
    {
        RunResult r = run_lowbit({"inspect", f});
        EXPECT_EQ(r.signal, 0);
        EXPECT_EQ(r.exit_code, 3) << r.err;
        EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos);
    }
    std::ofstream(f, std::ios::binary | std::ios::trunc) << "GGUF\x03";
    RunResult r = run_lowbit({"inspect", f});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    std::remove(f.c_str()); // one file per test process (pid in the name): do not leave them behind
}

} // namespace
} // namespace lowbit::e2e
