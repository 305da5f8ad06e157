// SPDX-License-Identifier: MIT
// `lowbit inspect` on quantized HF directories counts the model's logical parameters (from config.json), not the
// packed records, so parameters match the source model and bpw = bytes on disk * 8 / parameters.
// clang-format off
#include <gtest/gtest.h>  // before run_binary.h, which uses ::testing
#include "e2e/tiny_model.h"
// clang-format on

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

namespace lowbit::e2e {
namespace {

TEST(InspectQuantized, ParamsMatchSourceForEveryHfMethod) {
    if (!tiny_model_available()) GTEST_SKIP() << "python3 with numpy and tokenizers is needed to build the tiny model";
    const std::string tmp = make_test_dir("inspect_q");
    ASSERT_TRUE(make_tiny_model(tmp + "f32", "--hidden 128 --ff 256 --seed 2"));
    auto base = run_lowbit({"inspect", tmp + "f32", "--json"});
    ASSERT_EQ(base.exit_code, 0) << base.err;
    const int64_t n_params = nlohmann::json::parse(base.out)["n_params"].get<int64_t>();
    ASSERT_GT(n_params, 0);
    for (const char* method : {"nf4", "int8", "hqq", "rtn"}) {
        const std::string out = tmp + method;
        auto q = run_lowbit({"quantize", "-m", tmp + "f32", "-o", out, "--method", method, "--no-progress"});
        ASSERT_EQ(q.exit_code, 0) << q.err;
        auto r = run_lowbit({"inspect", out, "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["n_params"].get<int64_t>(), n_params) << method;
        EXPECT_EQ(j["quant_method"].get<std::string>(), std::string(method) == "rtn"   ? "lowbit_rtn"
                                                        : std::string(method) == "hqq" ? "hqq"
                                                                                       : "bitsandbytes");
        const double bpw = j["bpw"].get<double>();
        EXPECT_NEAR(bpw, 8.0 * j["tensor_bytes"].get<double>() / double(n_params), 1e-9) << method;
        EXPECT_LT(bpw, 32.0) << method; // the f32 source is 32 bpw; every method stores less
        auto text = run_lowbit({"inspect", out});
        EXPECT_NE(text.out.find("quantized: "), std::string::npos) << text.out;
    }
    remove_test_dir(tmp);
}

} // namespace
} // namespace lowbit::e2e
