// SPDX-License-Identifier: MIT
// A gtest fixture for CLI error tests that write one output file: a fresh temporary directory per test, the
// output path out_, and expect_error (exit code, "lowbit: error:" + a text on stderr, no signal, nothing written).
#pragma once

#include "e2e/run_binary.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace lowbit::e2e {

class OutFileTest : public ::testing::Test {
  protected:
    explicit OutFileTest(std::string prefix) : prefix_(std::move(prefix)) {}
    void SetUp() override {
        tmp_ = ::testing::TempDir() + "/" + prefix_ + std::to_string(::getpid());
        std::filesystem::create_directories(tmp_);
        out_ = tmp_ + "/out.gguf";
    }
    void TearDown() override { std::filesystem::remove_all(tmp_); }
    void expect_error(const std::vector<std::string>& args, int code, const std::string& text) {
        const RunResult r = run_lowbit(args);
        EXPECT_EQ(r.exit_code, code) << r.err;
        EXPECT_EQ(r.signal, 0);
        EXPECT_NE(r.err.find("lowbit: error:"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
        EXPECT_FALSE(std::filesystem::exists(out_));
    }
    std::string prefix_, tmp_, out_;
};

} // namespace lowbit::e2e
