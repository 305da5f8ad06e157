// SPDX-License-Identifier: MIT
// Helpers of the issue #15 (hardening) e2e suites (harden_*_test.cpp): error assertions, JSON and safetensors
// edits of fixture models, temp-file listings.
#pragma once

// run_binary.h uses gtest without including it: gtest first.
// clang-format off
#include <gtest/gtest.h>
#include "e2e/run_binary.h"
#include "e2e/tiny_model.h"
// clang-format on

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lowbit::e2e {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline void expect_error(const RunResult& r, int exit_code, const std::string& substring) {
    EXPECT_EQ(r.signal, 0) << "killed by a signal: " << r.err;
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(substring), std::string::npos) << "expected '" << substring << "' in: " << r.err;
}

inline void write_json(const std::string& path, const json& j) {
    std::ofstream(path, std::ios::trunc) << j.dump(2);
}

// Entries of `dir` whose name contains `needle`.
inline std::vector<std::string> entries_with(const std::string& dir, const std::string& needle) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().filename().string().find(needle) != std::string::npos) out.push_back(e.path().string());
    return out;
}

// Sets `value` at flat element `index` of the f32 tensor `name` in a safetensors file.
inline void poke_f32(const std::string& path, const std::string& name, int64_t index, float value) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header_len = 0;
    f.read(reinterpret_cast<char*>(&header_len), 8);
    std::string header(header_len, '\0');
    f.read(header.data(), static_cast<std::streamsize>(header_len));
    const json h = json::parse(header);
    ASSERT_TRUE(h.contains(name)) << name;
    ASSERT_EQ(h[name]["dtype"], "F32");
    const uint64_t begin = h[name]["data_offsets"][0].get<uint64_t>();
    f.seekp(static_cast<std::streamoff>(8 + header_len + begin + 4 * uint64_t(index)));
    f.write(reinterpret_cast<const char*>(&value), 4);
    ASSERT_TRUE(f.good());
}

// A copy of the bundled model whose config.json gets `key` = `value` (weights and tokenizer linked, not copied).
inline std::string bundled_with(const std::string& dir, const std::string& key, const json& value) {
    const fs::path src = fs::path(LOWBIT_SOURCE_DIR) / "models/lowbit-ref-30m";
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(src))
        if (e.path().filename() != "config.json") fs::create_symlink(e.path(), fs::path(dir) / e.path().filename());
    json c = json::parse(slurp((src / "config.json").string()));
    c[key] = value;
    write_json(dir + "/config.json", c);
    return dir;
}

} // namespace lowbit::e2e
