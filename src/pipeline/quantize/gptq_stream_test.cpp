// SPDX-License-Identifier: MIT
// Streamed GPTQ output: the directory GptqCheckpointStream writes while the job runs (every linear through the
// sink, nothing kept) is byte-identical to write_gptq_checkpoint's from the all-in-memory result, for several
// bit widths / group sizes / formats; an unfinished stream leaves nothing behind; planning and arrival errors.
#include "core/file.h"
#include "format/safetensors/safetensors_reader.h"
#include "model/arch/arch_list.h"
#include "model/memory_store.h"
#include "pipeline/quantize/calib_testing.h"
#include "pipeline/quantize/gptq_job.h"
#include "pipeline/quantize/hf_checkpoint_stream.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <random>
#include <unistd.h>

namespace lowbit::pipeline {
namespace {

namespace fs = std::filesystem;

format::ModelConfig tiny_config() {
    return calib_testing::tiny_llama_config(64, 128, 2);
}

using calib_testing::random_samples;

std::map<std::string, std::string> read_dir(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::ifstream f(e.path(), std::ios::binary);
        files[e.path().filename().string()] =
            std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    }
    return files;
}

class GptqStreamTest : public ::testing::Test {
  protected:
    void SetUp() override {
        config_ = tiny_config();
        // bf16 source: the copied tensors keep their dtype, the linears are read through dequantize_row.
        auto s = model::make_synthetic_model(config_, *model::find_arch("llama"), model::SourceFormat::kHf,
                                             DType::kBF16, 77);
        ASSERT_TRUE(s.ok()) << s.error().message;
        store_ = *s;
        dir_ = fs::temp_directory_path() / ("lowbit_gptq_stream_" + std::to_string(getpid()));
        fs::create_directories(dir_ / "src");
        std::ofstream(dir_ / "src" / "config.json") << R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64})";
        std::ofstream(dir_ / "src" / "tokenizer.json") << R"({"model": {}})";
        samples_ = random_samples(2, 16, config_.vocab_size, 5);
    }
    void TearDown() override { fs::remove_all(dir_); }

    GptqJobOptions options(int bits, int64_t group, bool sym, bool desc_act, bool v2) const {
        GptqJobOptions o;
        o.bits = bits, o.group_size = group, o.sym = sym, o.desc_act = desc_act, o.gptq_v2 = v2;
        o.calib.source = "test", o.calib.n_samples = 2, o.calib.seqlen = 16;
        return o;
    }

    format::ModelConfig config_;
    std::shared_ptr<model::MemoryStore> store_;
    fs::path dir_;
    CalibSamples samples_;
};

TEST_F(GptqStreamTest, StreamedDirectoryEqualsTheInMemoryWriterByteForByte) {
    struct Case {
        int bits;
        int64_t group;
        bool sym, desc_act, v2;
    };
    for (const Case& k :
         {Case{4, 32, false, true, false}, Case{4, -1, true, false, true}, Case{3, 32, false, false, false},
          Case{8, 64, true, true, false}, Case{2, 16, false, true, true}}) {
        SCOPED_TRACE(testing::Message() << k.bits << " bits, group " << k.group << (k.sym ? " sym" : " asym")
                                        << (k.desc_act ? " desc_act" : "") << (k.v2 ? " v2" : " v1"));
        const std::string out = (dir_ / "out").string();
        GptqJobOptions o = options(k.bits, k.group, k.sym, k.desc_act, k.v2);
        // Today's path: every linear in memory, then write_gptq_checkpoint.
        auto mem = gptq_quantize_model(store_, config_, samples_, o, nullptr);
        ASSERT_TRUE(mem.ok()) << mem.error().message;
        ASSERT_EQ(mem->linears.size(), 14u);
        QuantizeJobReport mem_report;
        ASSERT_TRUE(write_gptq_checkpoint(out, (dir_ / "src").string(), *store_, *mem, o, mem_report).ok());
        const auto expected = read_dir(out);
        fs::remove_all(out);
        // Streamed: laid out first, each linear written through the sink as it finishes.
        auto stream = GptqCheckpointStream::create(out, (dir_ / "src").string(), *store_, config_, o);
        ASSERT_TRUE(stream.ok()) << stream.error().message;
        int n_sunk = 0;
        o.sink = [&](const std::string& module, scheme::gptq::GptqLinear&& lin) {
            ++n_sunk;
            return (*stream)->add(module, std::move(lin));
        };
        auto streamed = gptq_quantize_model(store_, config_, samples_, o, nullptr);
        ASSERT_TRUE(streamed.ok()) << streamed.error().message;
        EXPECT_TRUE(streamed->linears.empty()); // nothing kept by the driver
        EXPECT_EQ(n_sunk, 14);
        EXPECT_EQ(streamed->loss, mem->loss); // the same quantization ran
        QuantizeJobReport report;
        ASSERT_TRUE((*stream)->finish(report).ok());
        const auto got = read_dir(out);
        ASSERT_EQ(got.size(), expected.size());
        for (const auto& [name, bytes] : expected) {
            ASSERT_TRUE(got.count(name)) << name;
            EXPECT_TRUE(got.at(name) == bytes)
                << name << " differs (" << got.at(name).size() << " vs " << bytes.size() << " bytes)";
        }
        EXPECT_TRUE(expected.count("model.safetensors") && expected.count("config.json") &&
                    expected.count("quantize_config.json") && expected.count("tokenizer.json"));
        EXPECT_EQ(report.n_params, mem_report.n_params);
        EXPECT_EQ(report.n_bytes, mem_report.n_bytes);
        EXPECT_EQ(report.file_bytes, mem_report.file_bytes);
        ASSERT_EQ(report.rows.size(), mem_report.rows.size());
        for (size_t i = 0; i < report.rows.size(); ++i) {
            EXPECT_EQ(report.rows[i].type, mem_report.rows[i].type);
            EXPECT_EQ(report.rows[i].n_tensors, mem_report.rows[i].n_tensors);
            EXPECT_EQ(report.rows[i].n_elems, mem_report.rows[i].n_elems);
            EXPECT_EQ(report.rows[i].n_bytes, mem_report.rows[i].n_bytes);
        }
        fs::remove_all(out);
    }
}

TEST_F(GptqStreamTest, UnfinishedStreamLeavesNoFileAndMissingLinearsAreNamed) {
    const std::string out = (dir_ / "out").string();
    const GptqJobOptions o = options(4, 32, true, false, false);
    {
        auto stream = GptqCheckpointStream::create(out, (dir_ / "src").string(), *store_, config_, o);
        ASSERT_TRUE(stream.ok()) << stream.error().message;
        // The layout is on disk under a temporary name, inside the staging directory "<out>.tmp.<pid>" (issue #15:
        // out itself appears only complete, at finish).
        EXPECT_FALSE(fs::exists(out));
        const std::string staging = temp_path_for(out);
        size_t n_partial = 0;
        for (const auto& e : fs::directory_iterator(staging))
            n_partial += e.path().filename().string().rfind("model.safetensors.partial.", 0) == 0;
        EXPECT_EQ(n_partial, 1u);
        QuantizeJobReport report;
        auto st = (*stream)->finish(report);
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().code, ErrorCode::kInternal);
        EXPECT_NE(st.error().message.find("never arrived"), std::string::npos) << st.error().message;
        EXPECT_NE(st.error().message.find("model.layers.0.mlp.down_proj"), std::string::npos) << st.error().message;
    }
    // Destroyed unfinished: the staging directory and its partial file are gone, and no out was created.
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(temp_path_for(out)));
}

TEST_F(GptqStreamTest, WrongOrRepeatedLinearsAreRefused) {
    const std::string out = (dir_ / "out").string();
    const GptqJobOptions o = options(4, 32, true, false, false);
    auto stream = GptqCheckpointStream::create(out, (dir_ / "src").string(), *store_, config_, o);
    ASSERT_TRUE(stream.ok()) << stream.error().message;
    auto lin = [](int64_t n_out, int64_t n_in) {
        scheme::gptq::GptqLinear l;
        l.bits = 4, l.n_out = n_out, l.n_in = n_in, l.n_groups = n_in / 32;
        l.codes.assign(size_t(n_out * n_in), 3), l.scales.assign(size_t(n_out * l.n_groups), 0.5f);
        l.zeros.assign(size_t(n_out * l.n_groups), 8), l.g_idx.resize(size_t(n_in));
        for (int64_t k = 0; k < n_in; ++k) l.g_idx[size_t(k)] = int32_t(k / 32);
        return l;
    };
    const std::string q = "model.layers.1.self_attn.q_proj";
    auto bad = (*stream)->add(q, lin(64, 128)); // q_proj is [64, 64]
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, ErrorCode::kInternal);
    EXPECT_NE(bad.error().message.find(q + ".qweight"), std::string::npos) << bad.error().message;
    ASSERT_TRUE((*stream)->add(q, lin(64, 64)).ok());
    EXPECT_FALSE((*stream)->add(q, lin(64, 64)).ok()); // twice
    EXPECT_FALSE((*stream)->add("model.layers.7.self_attn.q_proj", lin(64, 64)).ok());
}

TEST_F(GptqStreamTest, PlanningErrorsComeBeforeAnyWork) {
    const std::string out = (dir_ / "out").string();
    GptqJobOptions o = options(4, 48, true, false, false); // 48 does not divide 64
    auto g = GptqCheckpointStream::create(out, (dir_ / "src").string(), *store_, config_, o);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, ErrorCode::kUsage);
    EXPECT_NE(g.error().message.find("group size 48"), std::string::npos) << g.error().message;
    format::ModelConfig more = config_;
    more.n_layers = 3; // the store has two
    auto m = GptqCheckpointStream::create(out, (dir_ / "src").string(), *store_, more, options(4, 32, true, 0, 0));
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.error().code, ErrorCode::kBadInput);
    EXPECT_NE(m.error().message.find("model.layers.2.self_attn.q_proj.weight"), std::string::npos);
    EXPECT_FALSE(fs::exists(fs::path(out) / "model.safetensors"));
}

TEST_F(GptqStreamTest, GenericStreamTakesReplacedTensorsLate) {
    // The method-independent stream as AWQ would use it: a replaced norm arrives after the layout.
    const std::string out = (dir_ / "out").string();
    HfQuantizedCheckpoint plan;
    plan.row_type = "test", plan.quantizer = "lowbit test", plan.quantization_config_json = R"({"quant_method":"x"})";
    const std::string norm = "model.layers.0.input_layernorm.weight";
    plan.replaced[norm] = {};
    auto stream = HfCheckpointStream::create(out, (dir_ / "src").string(), *store_, plan);
    ASSERT_TRUE(stream.ok()) << stream.error().message;
    EXPECT_EQ((*stream)->n_pending(), 1u);
    const format::TensorInfo* info = store_->find(norm);
    ASSERT_NE(info, nullptr);
    std::vector<uint8_t> bytes(info->n_bytes);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + 1);
    EXPECT_FALSE((*stream)->replace(norm, std::span<const uint8_t>(bytes.data(), 10)).ok()); // wrong size
    const auto st_replace = (*stream)->replace(norm, bytes);
    ASSERT_TRUE(st_replace.ok()) << st_replace.error().message;
    EXPECT_EQ((*stream)->n_pending(), 0u);
    QuantizeJobReport report;
    ASSERT_TRUE((*stream)->finish(report).ok());
    auto st = safetensors::Store::open(out + "/model.safetensors");
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto v = (*st)->view(norm);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(std::memcmp(v->data, bytes.data(), bytes.size()), 0);
    auto emb = (*st)->view("model.embed_tokens.weight");
    auto src = store_->view("model.embed_tokens.weight");
    ASSERT_TRUE(emb.ok() && src.ok());
    EXPECT_EQ(std::memcmp(emb->data, src->data, src->n_bytes()), 0);
}

} // namespace
} // namespace lowbit::pipeline
