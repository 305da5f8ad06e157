// SPDX-License-Identifier: MIT
// Issue #15 (hardening), through the binary: interrupted outputs (class 6): the destination holds the old model or the
// new one, never a mix; no temporary survives SIGTERM/SIGINT, and the next run removes those a SIGKILL left. Each case
// asserts the exit code and the message.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict" // run_binary.h's string concatenation, see gguf_bad_input_test.cpp
#endif

#include "e2e/harden_util.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <map>
#include <string>
#include <vector>

namespace lowbit::e2e {
namespace {

// Class 6: interrupted outputs. LOWBIT_TEST_STOP_AT_COMMIT=<sig> (core/file.h) raises <sig> just before the
// first commit of the run: for a directory output that is the first file inside the staging directory.
class Interrupted : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (!tiny_model_available()) return;
        dir_ = make_test_dir("harden_interrupt");
        ok_ = make_tiny_model(dir_ + "src", "--hidden 128 --ff 256 --tokenizer --seed 7");
    }
    static void TearDownTestSuite() {
        if (!dir_.empty()) remove_test_dir(dir_);
    }
    void SetUp() override {
        if (!tiny_model_available()) GTEST_SKIP() << "python3 with numpy and tokenizers is needed";
        ASSERT_TRUE(ok_) << "make_tiny_llama.py failed";
    }
    static RunResult quantize_stopped_by(int sig, const std::string& out, const std::string& method) {
        ::setenv("LOWBIT_TEST_STOP_AT_COMMIT", std::to_string(sig).c_str(), 1);
        RunResult r = quantize(out, method);
        ::unsetenv("LOWBIT_TEST_STOP_AT_COMMIT");
        return r;
    }
    static RunResult quantize(const std::string& out, const std::string& method) {
        return run_lowbit({"quantize", "-m", dir_ + "src", "-o", out, "--method", method, "--no-progress", "-t", "2"});
    }
    // Every regular file under `d` (relative name -> bytes).
    static std::map<std::string, std::string> snapshot(const std::string& d) {
        std::map<std::string, std::string> files;
        for (const auto& e : fs::recursive_directory_iterator(d))
            if (e.is_regular_file()) files[fs::relative(e.path(), d).string()] = slurp(e.path().string());
        return files;
    }
    static inline std::string dir_;
    static inline bool ok_ = false;
};

TEST_F(Interrupted, DirectoryOutputKeepsTheOldModelOrTheNewOne) {
    const std::string parent = dir_ + "hf/", out = parent + "model";
    fs::create_directories(parent);
    // A kill on the very first run leaves no destination at all (nothing is created in place).
    RunResult first = quantize_stopped_by(SIGTERM, out, "rtn");
    EXPECT_EQ(first.signal, SIGTERM) << first.err;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_TRUE(entries_with(parent, ".tmp.").empty());

    ASSERT_EQ(quantize(out, "rtn").exit_code, 0);
    const auto old_model = snapshot(out);
    ASSERT_TRUE(old_model.count("model.safetensors"));

    RunResult term = quantize_stopped_by(SIGTERM, out, "nf4");
    EXPECT_EQ(term.signal, SIGTERM) << term.err;
    EXPECT_EQ(snapshot(out), old_model) << "SIGTERM mid-write must leave the old model untouched";
    EXPECT_TRUE(entries_with(parent, ".tmp.").empty()) << "the staging directory must be removed on SIGTERM";

    RunResult kill = quantize_stopped_by(SIGKILL, out, "nf4");
    EXPECT_EQ(kill.signal, SIGKILL) << kill.err;
    EXPECT_EQ(snapshot(out), old_model);
    EXPECT_EQ(entries_with(parent, ".tmp.").size(), 1u) << "SIGKILL cannot clean up: the staging directory stays";

    RunResult done = quantize(out, "nf4");
    ASSERT_EQ(done.exit_code, 0) << done.err;
    const auto new_model = snapshot(out);
    EXPECT_NE(new_model, old_model);
    EXPECT_NE(new_model.at("config.json").find("\"nf4\""), std::string::npos);
    EXPECT_TRUE(entries_with(parent, ".tmp.").empty()) << "the next run removes a dead run's staging directory";
    EXPECT_TRUE(entries_with(parent, ".old.").empty());
}

// The rename-aside fallback of StagedDir::commit (file systems without renameat2 RENAME_EXCHANGE), forced by
// LOWBIT_TEST_NO_RENAME_EXCHANGE=1: it replaces the model whole, and a kill in its window (old model set aside, new
// one not yet in place; LOWBIT_TEST_STOP_AFTER_ASIDE) leaves the old model beside the destination, put back by the
// next run that writes there.
TEST_F(Interrupted, RenameAsideFallbackReplacesAndRestores) {
    const std::string parent = dir_ + "aside/", out = parent + "model";
    fs::create_directories(parent);
    ASSERT_EQ(quantize(out, "rtn").exit_code, 0);
    const auto rtn_model = snapshot(out);

    ::setenv("LOWBIT_TEST_NO_RENAME_EXCHANGE", "1", 1);
    const RunResult replaced = quantize(out, "nf4");
    ASSERT_EQ(replaced.exit_code, 0) << replaced.err;
    const auto nf4_model = snapshot(out);
    EXPECT_NE(nf4_model, rtn_model);
    EXPECT_NE(nf4_model.at("config.json").find("\"nf4\""), std::string::npos);
    EXPECT_TRUE(entries_with(parent, ".old.").empty()) << "the set-aside old model is removed after the swap";
    EXPECT_TRUE(entries_with(parent, ".tmp.").empty());

    ::setenv("LOWBIT_TEST_STOP_AFTER_ASIDE", std::to_string(SIGKILL).c_str(), 1);
    const RunResult killed = quantize(out, "rtn");
    ::unsetenv("LOWBIT_TEST_STOP_AFTER_ASIDE");
    ::unsetenv("LOWBIT_TEST_NO_RENAME_EXCHANGE");
    EXPECT_EQ(killed.signal, SIGKILL) << killed.err;
    EXPECT_FALSE(fs::exists(out)) << "killed between the two renames: the destination is momentarily absent";
    const auto aside = entries_with(parent, ".old.");
    ASSERT_EQ(aside.size(), 1u);
    EXPECT_EQ(snapshot(aside[0]), nf4_model) << "the old model is complete beside the destination";

    // The next run that writes there puts the old model back first: stopped before its own commit, it leaves the
    // old model in place and nothing else.
    const RunResult next = quantize_stopped_by(SIGTERM, out, "rtn");
    EXPECT_EQ(next.signal, SIGTERM) << next.err;
    ASSERT_TRUE(fs::exists(out));
    EXPECT_EQ(snapshot(out), nf4_model);
    EXPECT_TRUE(entries_with(parent, ".old.").empty());
    EXPECT_TRUE(entries_with(parent, ".tmp.").empty());
}

TEST_F(Interrupted, GgufOutputLeavesNoTemporaryOnSigterm) {
    const std::string parent = dir_ + "gguf/", out = parent + "model.gguf";
    fs::create_directories(parent);
    ASSERT_EQ(quantize(out, "q8_0").exit_code, 0);
    const std::string old_bytes = slurp(out);

    for (int sig : {SIGTERM, SIGINT}) {
        RunResult r = quantize_stopped_by(sig, out, "q4_0");
        EXPECT_EQ(r.signal, sig) << r.err;
        EXPECT_EQ(slurp(out), old_bytes);
        EXPECT_TRUE(entries_with(parent, ".tmp.").empty()) << "signal " << sig << " must remove the temporary";
    }
    RunResult kill = quantize_stopped_by(SIGKILL, out, "q4_0");
    EXPECT_EQ(kill.signal, SIGKILL);
    EXPECT_EQ(slurp(out), old_bytes);
    EXPECT_EQ(entries_with(parent, ".tmp.").size(), 1u);

    RunResult done = quantize(out, "q4_0");
    ASSERT_EQ(done.exit_code, 0) << done.err;
    EXPECT_NE(slurp(out), old_bytes);
    EXPECT_TRUE(entries_with(parent, ".tmp.").empty()) << "the next run removes a dead run's temporary";
}

} // namespace
} // namespace lowbit::e2e
