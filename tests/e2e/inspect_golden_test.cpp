// SPDX-License-Identifier: MIT
// e2e: `lowbit inspect --json` on llama.cpp's golden GGUF files against their manifest (written by an independent
// script from llama-quantize's output): tensor count, elements, tensor bytes, file size, bits per weight and
// per-tensor byte counts.
#include "core/test_support.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
// GCC 12 reports a false -Wrestrict inside run_binary.h's string concatenation when it inlines run_lowbit.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include "e2e/run_binary.h"
#pragma GCC diagnostic pop

namespace lowbit::e2e {
namespace {

TEST(InspectGolden, MatchesManifest) {
    LOWBIT_REQUIRE_SHARED(dir, "data/golden/llamacpp/manifest.json");
    const std::string root = dir.substr(0, dir.rfind('/'));
    const auto manifest = nlohmann::json::parse(std::ifstream(dir));
    int checked = 0;
    for (const auto& f : manifest["files"]) {
        const std::string name = f["file"];
        if (name.find("imatrix") != std::string::npos) continue; // not a model
        SCOPED_TRACE(name);
        RunResult r = run_lowbit({"inspect", root + "/" + name, "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["n_tensors"], f["n_tensors"]);
        EXPECT_EQ(j["n_params"], f["n_elements"]);
        EXPECT_EQ(j["tensor_bytes"], f["tensor_bytes"]);
        EXPECT_EQ(j["file_bytes"], f["file_size"]);
        EXPECT_NEAR(j["bpw"].get<double>(), f["bpw_tensors"].get<double>(), 1e-4);
        EXPECT_EQ(j["architecture"], "llama");
        if (f.contains("tensors")) {
            std::map<std::string, uint64_t> bytes;
            std::map<std::string, std::string> types;
            for (const auto& t : j["tensors"]) {
                bytes[t["name"]] = t["bytes"];
                types[t["name"]] = t["type"];
            }
            for (const auto& t : f["tensors"]) {
                EXPECT_EQ(bytes[t["name"]], t["nbytes"].get<uint64_t>()) << t["name"];
                std::string ty = t["ggml_type"];
                for (char& c : ty) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                EXPECT_EQ(types[t["name"]], ty) << t["name"];
            }
        }
        ++checked;
    }
    EXPECT_GE(checked, 8);
}

} // namespace
} // namespace lowbit::e2e
